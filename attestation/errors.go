package attestation

import "errors"

// One sentinel per verification rule. Errors returned by Verify wrap exactly
// one of these, so errors.Is names the rule that failed.
var (
	// ErrPolicy: the policy itself is unusable (no clock, bad PCR pin).
	ErrPolicy = errors.New("attestation: invalid policy")
	// ErrTooLarge: the document exceeds MaxDocumentSize.
	ErrTooLarge = errors.New("attestation: document too large")
	// ErrMalformed: the bytes are not a well-formed COSE_Sign1 with a CBOR
	// map payload of the right field types.
	ErrMalformed = errors.New("attestation: malformed document")
	// ErrTrailingData: bytes follow the COSE_Sign1.
	ErrTrailingData = errors.New("attestation: trailing data after document")
	// ErrDuplicateKey: a CBOR map repeats a key.
	ErrDuplicateKey = errors.New("attestation: duplicate map key")
	// ErrUnknownField: the payload or header carries a field the
	// specification does not define.
	ErrUnknownField = errors.New("attestation: unknown field")
	// ErrAlgorithm: the COSE algorithm is not ES384.
	ErrAlgorithm = errors.New("attestation: algorithm is not ES384")
	// ErrMissingField: a mandatory payload field is absent or null.
	ErrMissingField = errors.New("attestation: missing mandatory field")
	// ErrFieldBounds: a field's length or count is outside its bounds.
	ErrFieldBounds = errors.New("attestation: field out of bounds")
	// ErrDigest: the digest is not SHA384.
	ErrDigest = errors.New("attestation: digest is not SHA384")
	// ErrPCRIndex: a PCR index is outside 0..31.
	ErrPCRIndex = errors.New("attestation: PCR index out of range")
	// ErrPCRLength: a PCR value is not 48 bytes.
	ErrPCRLength = errors.New("attestation: PCR value has wrong length")
	// ErrCertificate: the leaf or a cabundle entry is not a parsable X.509
	// certificate.
	ErrCertificate = errors.New("attestation: unparsable certificate")
	// ErrLeafProfile: the leaf key is not ECDSA P-384 or the leaf is not
	// signed with ECDSA-SHA384.
	ErrLeafProfile = errors.New("attestation: leaf certificate profile")
	// ErrCertificateExpired: a certificate of the chain expired before the
	// verification time.
	ErrCertificateExpired = errors.New("attestation: certificate expired")
	// ErrCertificateNotYetValid: a certificate of the chain is not yet valid
	// at the verification time.
	ErrCertificateNotYetValid = errors.New("attestation: certificate not yet valid")
	// ErrUntrustedChain: the leaf does not chain through the cabundle to a
	// pinned root.
	ErrUntrustedChain = errors.New("attestation: certificate chain not trusted")
	// ErrSignature: the COSE signature does not verify under the leaf key.
	ErrSignature = errors.New("attestation: invalid signature")
	// ErrTimestamp: the document's timestamp lies outside its leaf
	// certificate's validity.
	ErrTimestamp = errors.New("attestation: timestamp outside leaf validity")
	// ErrDebug: PCR0, PCR1 and PCR2 are all zero (debug mode) and the policy
	// does not allow debug documents.
	ErrDebug = errors.New("attestation: debug-mode enclave")
	// ErrPCRMismatch: a pinned PCR differs or is absent, or the document
	// matches none of the allowed measurements.
	ErrPCRMismatch = errors.New("attestation: PCR mismatch")
	// ErrReleaseExpired: the document matches an allowed measurement only
	// at or after its not_after.
	ErrReleaseExpired = errors.New("attestation: release expired")
	// ErrReleaseNotYetValid: the document matches an allowed measurement
	// only before its not_before.
	ErrReleaseNotYetValid = errors.New("attestation: release not yet valid")
	// ErrNonceMismatch: the nonce differs from the expected one.
	ErrNonceMismatch = errors.New("attestation: nonce mismatch")
	// ErrPublicKeyMismatch: the public_key differs from the expected one.
	ErrPublicKeyMismatch = errors.New("attestation: public key mismatch")
	// ErrStale: the document is older than the policy's maximum age.
	ErrStale = errors.New("attestation: document too old")
	// ErrFutureTimestamp: the document's timestamp is after the verification
	// time by more than the allowed clock skew.
	ErrFutureTimestamp = errors.New("attestation: timestamp in the future")
)

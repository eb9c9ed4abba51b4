package attestation

import "errors"

var rules = []struct {
	err  error
	name string
}{
	{ErrPolicy, "policy"},
	{ErrTooLarge, "too_large"},
	{ErrMalformed, "malformed"},
	{ErrTrailingData, "trailing_data"},
	{ErrDuplicateKey, "duplicate_key"},
	{ErrUnknownField, "unknown_field"},
	{ErrAlgorithm, "algorithm"},
	{ErrMissingField, "missing_field"},
	{ErrFieldBounds, "field_bounds"},
	{ErrDigest, "digest"},
	{ErrPCRIndex, "pcr_index"},
	{ErrPCRLength, "pcr_length"},
	{ErrCertificate, "certificate"},
	{ErrLeafProfile, "leaf_profile"},
	{ErrCertificateExpired, "certificate_expired"},
	{ErrCertificateNotYetValid, "certificate_not_yet_valid"},
	{ErrUntrustedChain, "untrusted_chain"},
	{ErrSignature, "signature"},
	{ErrTimestamp, "timestamp"},
	{ErrDebug, "debug"},
	{ErrPCRMismatch, "pcr_mismatch"},
	{ErrReleaseExpired, "release_expired"},
	{ErrReleaseNotYetValid, "release_not_yet_valid"},
	{ErrNonceMismatch, "nonce_mismatch"},
	{ErrPublicKeyMismatch, "public_key_mismatch"},
	{ErrStale, "stale"},
	{ErrFutureTimestamp, "future_timestamp"},
}

// Rule names the verification rule an error from Verify broke, for log
// lines and metrics labels ("signature", "pcr_mismatch", ...). It returns ""
// for an error that wraps no sentinel of this package.
func Rule(err error) string {
	for _, r := range rules {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return ""
}

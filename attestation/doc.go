// Package attestation verifies AWS Nitro Enclaves attestation documents.
//
// A client calls [Verify] with the raw document (a COSE_Sign1, tagged or
// untagged) and a [Policy]. Verify returns a fully verified [Document] or an
// error; there is no partially verified result. Every rule has its own
// sentinel error (ErrSignature, ErrUntrustedChain, ErrPCRMismatch, ...) that
// callers test with errors.Is, so a log line can say exactly which rule failed.
//
// The checks, in order, are described in docs/attestation.md: size, COSE
// structure (ES384 only), payload fields and bounds as the AWS NSM
// specification gives them, certificate parsing and the leaf profile, the
// validity of the chain at the verification time, the chain from the leaf
// through the cabundle to a pinned root, the COSE signature by the leaf, and
// finally the policy: debug mode, PCR pins, nonce, public key and freshness.
//
// The package is built directly on fxamacker/cbor and the standard library's
// crypto/x509 and crypto/ecdsa rather than on hf/nitrite: nitrite returns a
// result together with an error, leaves the COSE signature result in a flag
// for the caller to check, and decodes with permissive CBOR options. Here the
// decoder rejects duplicate keys, unknown fields, tags and trailing data, and
// bounds every length before it allocates.
package attestation

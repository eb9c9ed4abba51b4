package eif

import "errors"

// rules are checked in order: the specific signature faults before
// ErrSignature, which they wrap.
var rules = []struct {
	err  error
	name string
}{
	{ErrTooLarge, "eif_too_large"},
	{ErrTruncated, "eif_truncated"},
	{ErrMagic, "eif_magic"},
	{ErrVersion, "eif_version"},
	{ErrLayout, "eif_layout"},
	{ErrCRC, "eif_crc"},
	{ErrSigningCertificate, "eif_signing_certificate"},
	{ErrSignatureInvalid, "eif_signature_invalid"},
	{ErrSignedPCR0, "eif_signed_pcr0"},
	{ErrSignature, "eif_signature"},
	{ErrSection, "eif_section"},
	{ErrSigned, "eif_signed"},
}

// Rule names the rule of the format an error from Measure or Sign broke
// ("eif_crc", "eif_signed_pcr0", ...), for messages and logs; "" for an
// error that wraps no sentinel of this package.
func Rule(err error) string {
	for _, r := range rules {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return ""
}

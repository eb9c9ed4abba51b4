// Package cmsfmt names the parts of a CMS EnvelopedData (RFC 5652) as KMS
// writes CiphertextForRecipient: the object identifiers and the universal
// tags. The enclave reads such envelopes (enclave/seal/cms); the local KMS
// of the tests writes them (internal/kmstest).
package cmsfmt

import "encoding/asn1"

// Object identifiers.
var (
	OIDEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	OIDData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	OIDRSAESOAEP     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	OIDMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	OIDPSpecified    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 9}
	OIDSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	OIDAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// Universal tags.
const (
	TagInteger     = 0x02
	TagOctetString = 0x04
	TagNull        = 0x05
	TagOID         = 0x06
	TagSequence    = 0x10
	TagSet         = 0x11
)

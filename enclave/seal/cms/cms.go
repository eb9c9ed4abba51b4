// Package cms decrypts the CMS EnvelopedData (RFC 5652 §6) in which AWS KMS
// returns CiphertextForRecipient to a Nitro enclave: one
// KeyTransRecipientInfo whose content-encryption key is wrapped with
// RSAES-OAEP (SHA-256, MGF1-SHA-256, RFC 3560) to the RSA key in the
// enclave's attestation document, and content encrypted with AES-256-CBC
// (RFC 3565). KMS encodes it in BER, with indefinite lengths; both BER and
// DER are read.
//
// Encrypt builds the same structure, for the local KMS the tests use.
package cms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"

	"github.com/nitro-signer/nitro-signer/internal/cmsfmt"
)

// MaxSize bounds an EnvelopedData accepted for decryption.
const MaxSize = 64 << 10

func oidIs(e element, oid asn1.ObjectIdentifier) bool {
	if !e.is(classUniversal, cmsfmt.TagOID, false) {
		return false
	}
	der, _ := asn1.Marshal(oid)
	return bytes.Equal(e.content, der[2:])
}

// expect reads the elements of a constructed element and checks their count.
func expect(e element, class, tag int, min, max, depth int) ([]element, error) {
	if !e.is(class, tag, true) {
		return nil, malformed("expected tag %d (class %d), got %d (class %d)", tag, class, e.tag, e.class)
	}
	c, err := children(e, depth)
	if err != nil {
		return nil, err
	}
	if len(c) < min || len(c) > max {
		return nil, malformed("tag %d with %d elements", tag, len(c))
	}
	return c, nil
}

// Decrypt recovers the plaintext of an EnvelopedData with the recipient's
// RSA private key.
func Decrypt(b []byte, priv *rsa.PrivateKey) ([]byte, error) {
	if len(b) > MaxSize {
		return nil, malformed("%d bytes", len(b))
	}
	top, rest, err := next(b, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("trailing bytes")
	}
	ci, err := expect(top, classUniversal, cmsfmt.TagSequence, 2, 2, 0)
	if err != nil {
		return nil, err
	}
	if !oidIs(ci[0], cmsfmt.OIDEnvelopedData) {
		return nil, malformed("content type is not envelopedData")
	}
	wrapper, err := expect(ci[1], classContext, 0, 1, 1, 1)
	if err != nil {
		return nil, err
	}
	ed, err := expect(wrapper[0], classUniversal, cmsfmt.TagSequence, 3, 5, 2)
	if err != nil {
		return nil, err
	}
	if !ed[0].is(classUniversal, cmsfmt.TagInteger, false) || len(ed[0].content) != 1 || ed[0].content[0] > 4 {
		return nil, malformed("EnvelopedData version")
	}
	i := 1
	if ed[i].is(classContext, 0, true) { // originatorInfo, unused
		i++
	}
	if i+1 >= len(ed) {
		return nil, malformed("EnvelopedData too short")
	}
	ris, err := expect(ed[i], classUniversal, cmsfmt.TagSet, 1, 1, 3)
	if err != nil {
		return nil, err
	}
	cek, err := unwrapKey(ris[0], priv)
	if err != nil {
		return nil, err
	}
	defer clear(cek)
	return decryptContent(ed[i+1], cek)
}

func unwrapKey(ri element, priv *rsa.PrivateKey) ([]byte, error) {
	ktri, err := expect(ri, classUniversal, cmsfmt.TagSequence, 4, 4, 4)
	if err != nil {
		return nil, malformed("recipient is not a KeyTransRecipientInfo")
	}
	if !ktri[0].is(classUniversal, cmsfmt.TagInteger, false) || len(ktri[0].content) != 1 ||
		(ktri[0].content[0] != 0 && ktri[0].content[0] != 2) {
		return nil, malformed("KeyTransRecipientInfo version")
	}
	// ktri[1] is the recipient identifier (issuer and serial, or subject key
	// identifier): there is one recipient and one private key to try.
	alg, err := expect(ktri[2], classUniversal, cmsfmt.TagSequence, 1, 2, 5)
	if err != nil {
		return nil, err
	}
	if !oidIs(alg[0], cmsfmt.OIDRSAESOAEP) {
		return nil, malformed("key encryption is not RSAES-OAEP")
	}
	if len(alg) != 2 {
		return nil, malformed("RSAES-OAEP without parameters means SHA-1; KMS uses SHA-256")
	}
	if err := checkOAEPParams(alg[1]); err != nil {
		return nil, err
	}
	if !ktri[3].is(classUniversal, cmsfmt.TagOctetString, ktri[3].constructed) {
		return nil, malformed("encryptedKey is not an OCTET STRING")
	}
	wrapped, err := octets(ktri[3], 5)
	if err != nil {
		return nil, err
	}
	cek, err := rsa.DecryptOAEP(sha256.New(), nil, priv, wrapped, nil)
	if err != nil {
		return nil, malformed("the content key does not unwrap with this key")
	}
	if len(cek) != 32 {
		clear(cek)
		return nil, malformed("content key of %d bytes", len(cek))
	}
	return cek, nil
}

// checkOAEPParams requires hashFunc SHA-256, MGF1 with SHA-256 and an empty
// label.
func checkOAEPParams(p element) error {
	fields, err := expect(p, classUniversal, cmsfmt.TagSequence, 2, 3, 6)
	if err != nil {
		return err
	}
	hash, err := expect(fields[0], classContext, 0, 1, 1, 7)
	if err != nil {
		return malformed("RSAES-OAEP hashFunc missing")
	}
	if err := isAlg(hash[0], cmsfmt.OIDSHA256); err != nil {
		return err
	}
	mgf, err := expect(fields[1], classContext, 1, 1, 1, 7)
	if err != nil {
		return malformed("RSAES-OAEP maskGenFunc missing")
	}
	m, err := expect(mgf[0], classUniversal, cmsfmt.TagSequence, 2, 2, 8)
	if err != nil || !oidIs(m[0], cmsfmt.OIDMGF1) {
		return malformed("RSAES-OAEP maskGenFunc is not MGF1")
	}
	if err := isAlg(m[1], cmsfmt.OIDSHA256); err != nil {
		return err
	}
	if len(fields) == 3 {
		ps, err := expect(fields[2], classContext, 2, 1, 1, 7)
		if err != nil {
			return malformed("RSAES-OAEP pSourceFunc")
		}
		pf, err := expect(ps[0], classUniversal, cmsfmt.TagSequence, 2, 2, 8)
		if err != nil || !oidIs(pf[0], cmsfmt.OIDPSpecified) || !pf[1].is(classUniversal, cmsfmt.TagOctetString, false) || len(pf[1].content) != 0 {
			return malformed("RSAES-OAEP label must be empty")
		}
	}
	return nil
}

// isAlg checks an AlgorithmIdentifier with absent or NULL parameters.
func isAlg(e element, oid asn1.ObjectIdentifier) error {
	a, err := expect(e, classUniversal, cmsfmt.TagSequence, 1, 2, 9)
	if err != nil || !oidIs(a[0], oid) {
		return malformed("algorithm is not %v", oid)
	}
	if len(a) == 2 && !(a[1].is(classUniversal, cmsfmt.TagNull, false) && len(a[1].content) == 0) {
		return malformed("algorithm %v has parameters", oid)
	}
	return nil
}

func decryptContent(e element, cek []byte) ([]byte, error) {
	eci, err := expect(e, classUniversal, cmsfmt.TagSequence, 3, 3, 3)
	if err != nil {
		return nil, malformed("encryptedContentInfo without encrypted content")
	}
	if !oidIs(eci[0], cmsfmt.OIDData) {
		return nil, malformed("content type is not data")
	}
	alg, err := expect(eci[1], classUniversal, cmsfmt.TagSequence, 2, 2, 4)
	if err != nil || !oidIs(alg[0], cmsfmt.OIDAES256CBC) {
		return nil, malformed("content encryption is not AES-256-CBC")
	}
	if !alg[1].is(classUniversal, cmsfmt.TagOctetString, false) || len(alg[1].content) != aes.BlockSize {
		return nil, malformed("AES-CBC IV")
	}
	iv := alg[1].content
	if eci[2].class != classContext || eci[2].tag != 0 {
		return nil, malformed("encryptedContent tag")
	}
	ct, err := octets(eci[2], 4)
	if err != nil {
		return nil, err
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, malformed("encrypted content of %d bytes", len(ct))
	}
	block, _ := aes.NewCipher(cek)
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > aes.BlockSize {
		clear(plain)
		return nil, malformed("padding")
	}
	for _, c := range plain[len(plain)-pad:] {
		if int(c) != pad {
			clear(plain)
			return nil, malformed("padding")
		}
	}
	return plain[:len(plain)-pad], nil
}

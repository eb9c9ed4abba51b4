package kmstest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"

	"github.com/nitro-signer/nitro-signer/internal/cmsfmt"
)

// What KMS writes as CiphertextForRecipient: a CMS EnvelopedData (RFC 5652)
// of the plaintext to the Recipient document's RSA key, RSAES-OAEP with
// SHA-256 for the content key and AES-256-CBC for the content. The enclave
// reads it with enclave/seal/cms.

// EncryptOptions shape EncryptCMS's output.
type EncryptOptions struct {
	// Indefinite encodes the constructed elements with indefinite lengths
	// and the content as a constructed OCTET STRING, as KMS does.
	Indefinite bool
	// Segment, with Indefinite, splits the content into segments of this
	// many bytes (0: one segment, as KMS sends it).
	Segment int
	// ExplicitLabel writes RSAES-OAEP's pSourceFunc (an empty label),
	// which KMS leaves at its default.
	ExplicitLabel bool
	// SubjectKeyID identifies the recipient (version 2); nil uses an
	// issuer and serial number of zero (version 0).
	SubjectKeyID []byte
}

// EncryptCMS builds an EnvelopedData of plaintext to pub, as KMS does.
func EncryptCMS(pub *rsa.PublicKey, plaintext []byte, o EncryptOptions) ([]byte, error) {
	cek := make([]byte, 32)
	rand.Read(cek)
	defer clear(cek)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, aes.BlockSize)
	rand.Read(iv)
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(cek)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	clear(padded)

	cons := func(tag byte, parts ...[]byte) []byte { return encode(tag|0x20, o.Indefinite, parts...) }
	prim := func(tag byte, v []byte) []byte { return encode(tag, false, v) }
	oid := func(id asn1.ObjectIdentifier) []byte { b, _ := asn1.Marshal(id); return b }
	algNull := func(id asn1.ObjectIdentifier) []byte {
		return cons(cmsfmt.TagSequence, oid(id), []byte{cmsfmt.TagNull, 0})
	}

	version, rid := byte(0), cons(cmsfmt.TagSequence, cons(cmsfmt.TagSequence), prim(cmsfmt.TagInteger, []byte{0}))
	if o.SubjectKeyID != nil {
		version, rid = 2, encode(0x80, false, o.SubjectKeyID)
	}
	// KMS writes hashFunc and maskGenFunc and leaves pSourceFunc at its
	// default (an empty label); ExplicitLabel writes it out.
	oaepParams := [][]byte{
		cons(0x80, algNull(cmsfmt.OIDSHA256)),
		cons(0x80|0x01, cons(cmsfmt.TagSequence, oid(cmsfmt.OIDMGF1), algNull(cmsfmt.OIDSHA256))),
	}
	if o.ExplicitLabel {
		oaepParams = append(oaepParams, cons(0x80|0x02, cons(cmsfmt.TagSequence, oid(cmsfmt.OIDPSpecified), prim(cmsfmt.TagOctetString, nil))))
	}
	oaep := cons(cmsfmt.TagSequence, oaepParams...)
	ktri := cons(cmsfmt.TagSequence, prim(cmsfmt.TagInteger, []byte{version}), rid, cons(cmsfmt.TagSequence, oid(cmsfmt.OIDRSAESOAEP), oaep), prim(cmsfmt.TagOctetString, wrapped))
	var content []byte
	if o.Indefinite {
		// KMS sends the content as one segment of a constructed [0];
		// Segment splits it further.
		seg := len(ct)
		if o.Segment > 0 {
			seg = o.Segment
		}
		var segs [][]byte
		for i := 0; i < len(ct); i += seg {
			segs = append(segs, prim(cmsfmt.TagOctetString, ct[i:min(i+seg, len(ct))]))
		}
		content = encode(0x80|0x20, true, segs...)
	} else {
		content = encode(0x80, false, ct)
	}
	eci := cons(cmsfmt.TagSequence, oid(cmsfmt.OIDData), cons(cmsfmt.TagSequence, oid(cmsfmt.OIDAES256CBC), prim(cmsfmt.TagOctetString, iv)), content)
	ed := cons(cmsfmt.TagSequence, prim(cmsfmt.TagInteger, []byte{version}), cons(cmsfmt.TagSet, ktri), eci)
	return cons(cmsfmt.TagSequence, oid(cmsfmt.OIDEnvelopedData), cons(0x80, ed)), nil
}

// encode writes one element: definite length, or indefinite with an
// end-of-contents marker.
func encode(tag byte, indefinite bool, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	if indefinite {
		out := append([]byte{tag, 0x80}, body...)
		return append(out, 0, 0)
	}
	out := []byte{tag}
	switch n := len(body); {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, body...)
}

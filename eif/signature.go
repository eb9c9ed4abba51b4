package eif

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
)

// The signature section, as nitro-cli build-enclave --signing-certificate
// --private-key writes it (aws-nitro-enclaves-image-format, serde_cbor):
//
//	[ {"signing_certificate": [u8…],   ; the certificate file, PEM, verbatim
//	   "signature":           [u8…]} ] ; an untagged COSE_Sign1
//
// Both byte strings are CBOR arrays of integers (serde's encoding of a
// Vec<u8>), not CBOR byte strings. The COSE_Sign1 is
//
//	[ h'a1013822' ({1: -35}, ES384), {}, payload, signature (r ‖ s, 96 bytes) ]
//
// signed over Sig_structure ["Signature1", protected, h'', payload] with
// SHA-384, and its payload is
//
//	{"register_index": 0, "register_value": [u8…]} ; PCR0, 48 integers
//
// nitro-cli checks a signature by comparing that payload, byte for byte,
// with the one it computes from the image's PCR0. There is one signature,
// PCR0's. PCR8 = extend(SHA-384(DER of the signing certificate)).
//
// parseSignature holds a section to exactly that encoding: it decodes it,
// encodes what it read the way nitro-cli does and requires the same bytes,
// so indefinite lengths, byte strings, other key orders, extra keys, tags
// and non-minimal integers are all refused.

// Errors of a signed image. Each wraps ErrSignature, so errors.Is(err,
// ErrSignature) holds for any fault of the signature section.
var (
	ErrSignature = errors.New("eif: invalid signature section")
	// ErrSigningCertificate: the embedded certificate is not one PEM
	// certificate of a P-384 ECDSA key.
	ErrSigningCertificate = fmt.Errorf("%w: signing certificate", ErrSignature)
	// ErrSignatureInvalid: the COSE signature does not verify with the
	// embedded certificate's key.
	ErrSignatureInvalid = fmt.Errorf("%w: the signature does not verify with the signing certificate's key", ErrSignature)
	// ErrSignedPCR0: the signature verifies but signs another PCR0 (a
	// section taken from another image).
	ErrSignedPCR0 = fmt.Errorf("%w: the signature is over another image's PCR0", ErrSignature)
)

const (
	keySigningCertificate = "signing_certificate"
	keySignature          = "signature"
	keyRegisterIndex      = "register_index"
	keyRegisterValue      = "register_value"
	sigContext            = "Signature1"
	// es384Size is r ‖ s of a P-384 ECDSA signature.
	es384Size = 96
)

// protectedES384 is the COSE protected header {1: -35} (alg ES384),
// serialized, as nitro-cli writes it for a P-384 key.
var protectedES384 = []byte{0xa1, 0x01, 0x38, 0x22}

// pcrSignature is one element of the section, as decoded.
type pcrSignature struct {
	SigningCertificate []byte `cbor:"signing_certificate"`
	Signature          []byte `cbor:"signature"`
}

// coseSign1 is the untagged COSE_Sign1 array, as decoded.
type coseSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[any]any
	Payload     []byte
	Signature   []byte
}

// pcrInfo is the signed payload, as decoded.
type pcrInfo struct {
	RegisterIndex int64  `cbor:"register_index"`
	RegisterValue []byte `cbor:"register_value"`
}

var sectionDecoder = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   4,
		MaxArrayElements:  maxSmallSection,
		MaxMapPairs:       16,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err) // constant options
	}
	return dm
}()

// parseSignature checks a signature section against the image's PCR0 and
// returns the signing certificate.
func parseSignature(section, pcr0 []byte) (*x509.Certificate, error) {
	var sigs []pcrSignature
	if err := sectionDecoder.Unmarshal(section, &sigs); err != nil {
		return nil, fmt.Errorf("%w: not a list of PCR signatures: %v", ErrSignature, err)
	}
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: %d PCR signatures, want PCR0's alone", ErrSignature, len(sigs))
	}
	if !bytes.Equal(encodeSection(sigs[0].SigningCertificate, sigs[0].Signature), section) {
		return nil, fmt.Errorf("%w: not encoded as nitro-cli encodes it", ErrSignature)
	}
	cert, err := parseCertificatePEM(sigs[0].SigningCertificate)
	if err != nil {
		return nil, err
	}
	var msg coseSign1
	if err := sectionDecoder.Unmarshal(sigs[0].Signature, &msg); err != nil {
		return nil, fmt.Errorf("%w: the signature is not a COSE_Sign1: %v", ErrSignature, err)
	}
	if !bytes.Equal(msg.Protected, protectedES384) || len(msg.Unprotected) != 0 || len(msg.Signature) != es384Size {
		return nil, fmt.Errorf("%w: the signature is not ES384 with the protected header {1: -35} and no other header", ErrSignature)
	}
	if !bytes.Equal(encodeCOSESign1(msg.Payload, msg.Signature), sigs[0].Signature) {
		return nil, fmt.Errorf("%w: the COSE_Sign1 is not encoded as nitro-cli encodes it", ErrSignature)
	}
	pub := cert.PublicKey.(*ecdsa.PublicKey) // parseCertificatePEM checked
	r := new(big.Int).SetBytes(msg.Signature[:es384Size/2])
	s := new(big.Int).SetBytes(msg.Signature[es384Size/2:])
	digest := sha512.Sum384(sigStructure(msg.Payload))
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return nil, ErrSignatureInvalid
	}
	if !bytes.Equal(msg.Payload, encodePCRInfo(0, pcr0)) {
		var info pcrInfo
		switch err := sectionDecoder.Unmarshal(msg.Payload, &info); {
		case err != nil || info.RegisterIndex != 0:
			return nil, fmt.Errorf("%w: the signed payload is not PCR0's {register_index, register_value}", ErrSignedPCR0)
		case bytes.Equal(info.RegisterValue, pcr0):
			return nil, fmt.Errorf("%w: the signed payload names this PCR0 but is not encoded as nitro-cli encodes it", ErrSignature)
		}
		return nil, fmt.Errorf("%w: signed %x…, the image's is %x…", ErrSignedPCR0, prefix(info.RegisterValue), prefix(pcr0))
	}
	return cert, nil
}

func prefix(b []byte) []byte { return b[:min(len(b), 8)] }

// parseCertificatePEM reads a signing certificate file: one CERTIFICATE
// PEM block with no headers and nothing but white space around it, of an
// ECDSA P-384 key.
func parseCertificatePEM(b []byte) (*x509.Certificate, error) {
	begin := bytes.Index(b, []byte("-----BEGIN"))
	if begin < 0 || len(bytes.TrimSpace(b[:begin])) != 0 {
		return nil, fmt.Errorf("%w: not a PEM certificate", ErrSigningCertificate)
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" || len(block.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: not exactly one PEM CERTIFICATE block", ErrSigningCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSigningCertificate, err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: the key is not ECDSA P-384 (ES384, as nitro-cli signs)", ErrSigningCertificate)
	}
	return cert, nil
}

// pcr8 is the PCR8 of an image signed with cert.
func pcr8(cert *x509.Certificate) []byte {
	h := sha512.New384()
	h.Write(cert.Raw)
	return extend(h)
}

// The encoders below write CBOR exactly as serde_cbor writes nitro-cli's
// structures: definite lengths, shortest heads, struct fields as text keys
// in declaration order, Vec<u8> as an array of integers.

func appendHead(b []byte, major byte, n uint64) []byte {
	major <<= 5
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= 0xff:
		return append(b, major|24, byte(n))
	case n <= 0xffff:
		return append(b, major|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

const (
	majorUint  = 0
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
)

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

func appendByteString(b, v []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(v))), v...)
}

// appendIntArray writes v as serde writes a Vec<u8>.
func appendIntArray(b, v []byte) []byte {
	b = appendHead(b, majorArray, uint64(len(v)))
	for _, x := range v {
		b = appendHead(b, majorUint, uint64(x))
	}
	return b
}

// encodeSection is the signature section of one PCR signature.
func encodeSection(certPEM, cose []byte) []byte {
	b := appendHead(nil, majorArray, 1)
	b = appendHead(b, majorMap, 2)
	b = appendIntArray(appendText(b, keySigningCertificate), certPEM)
	return appendIntArray(appendText(b, keySignature), cose)
}

// encodePCRInfo is the payload nitro-cli signs for a PCR.
func encodePCRInfo(index uint64, value []byte) []byte {
	b := appendHead(nil, majorMap, 2)
	b = appendHead(appendText(b, keyRegisterIndex), majorUint, index)
	return appendIntArray(appendText(b, keyRegisterValue), value)
}

// encodeCOSESign1 is the untagged COSE_Sign1 of payload with the ES384
// protected header and no unprotected one.
func encodeCOSESign1(payload, signature []byte) []byte {
	b := appendHead(nil, majorArray, 4)
	b = appendByteString(b, protectedES384)
	b = appendHead(b, majorMap, 0)
	b = appendByteString(b, payload)
	return appendByteString(b, signature)
}

// sigStructure is what COSE_Sign1 signs: ["Signature1", protected, h”, payload].
func sigStructure(payload []byte) []byte {
	b := appendHead(nil, majorArray, 4)
	b = appendText(b, sigContext)
	b = appendByteString(b, protectedES384)
	b = appendByteString(b, nil)
	return appendByteString(b, payload)
}

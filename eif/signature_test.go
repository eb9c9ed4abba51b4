package eif_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/eif"
)

// newSigner makes a P-384 key and a self-signed certificate for it.
func newSigner(t testing.TB) (eif.Signer, []byte) {
	t.Helper()
	return newSignerFor(t, mustKey(t, elliptic.P384()))
}

func mustKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSignerFor(t testing.TB, key crypto.Signer) (eif.Signer, []byte) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "release"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return eif.Signer{Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Key: key, Rand: rand.Reader}, der
}

func signedImage(t testing.TB, img eif.Image, s eif.Signer) []byte {
	t.Helper()
	unsigned := write(t, img)
	var out bytes.Buffer
	if _, err := eif.Sign(&out, bytes.NewReader(unsigned), int64(len(unsigned)), s); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// lastSection returns the data of an image's last section, read from the
// header as the format defines it.
func lastSection(t testing.TB, b []byte) []byte {
	t.Helper()
	n := int(binary.BigEndian.Uint16(b[26:]))
	off := binary.BigEndian.Uint64(b[28+8*(n-1):])
	size := binary.BigEndian.Uint64(b[28+8*eif.MaxSections+8*(n-1):])
	return b[off+eif.SectionHeaderSize : off+eif.SectionHeaderSize+size]
}

func withSection(t testing.TB, img eif.Image, section []byte) []byte {
	t.Helper()
	img.Sections = append(img.Sections, eif.Section{Type: eif.SectionSignature, Data: section})
	return write(t, img)
}

// An encoder of the signature section independent of the package's, on
// fxamacker/cbor: serde's Vec<u8> is a slice of small integers, structs
// keep their field order.

func ints(b []byte) []uint16 {
	out := make([]uint16, len(b))
	for i, x := range b {
		out[i] = uint16(x)
	}
	return out
}

type wireSignature struct {
	SigningCertificate []uint16 `cbor:"signing_certificate"`
	Signature          []uint16 `cbor:"signature"`
}

type wirePCRInfo struct {
	RegisterIndex int      `cbor:"register_index"`
	RegisterValue []uint16 `cbor:"register_value"`
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parts are the pieces of a section; build encodes and signs them.
type parts struct {
	cert        []byte // PEM
	key         crypto.Signer
	protected   []byte
	unprotected map[int]any
	payload     []byte
	// sig, when set, replaces the signature bytes after signing.
	sig func([]byte) []byte
	// cose, when set, replaces the encoded COSE_Sign1.
	cose func([]byte) []byte
}

func goodParts(t testing.TB, s eif.Signer, pcr0 []byte) parts {
	return parts{cert: s.Certificate, key: s.Key, protected: []byte{0xa1, 0x01, 0x38, 0x22}, unprotected: map[int]any{},
		payload: mustCBOR(t, wirePCRInfo{0, ints(pcr0)})}
}

func (p parts) build(t testing.TB) []byte {
	t.Helper()
	toSign := mustCBOR(t, []any{"Signature1", p.protected, []byte{}, p.payload})
	digest := sha512.Sum384(toSign)
	der, err := p.key.Sign(rand.Reader, digest[:], crypto.SHA384)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	size := (p.key.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	rs.R.FillBytes(sig[:size])
	rs.S.FillBytes(sig[size:])
	if p.sig != nil {
		sig = p.sig(sig)
	}
	cose := mustCBOR(t, []any{p.protected, p.unprotected, p.payload, sig})
	if p.cose != nil {
		cose = p.cose(cose)
	}
	return mustCBOR(t, []wireSignature{{ints(p.cert), ints(cose)}})
}

func TestSignedImageFromIndependentTools(t *testing.T) {
	// testdata/signed.eif was built by testdata/mkfixture.py: Python's
	// hashlib and zlib, its own CBOR encoder and openssl's ECDSA, no Go.
	b, err := os.ReadFile(filepath.Join("testdata", "signed.eif"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	j, _ := os.ReadFile(filepath.Join("testdata", "signed.json"))
	if err := json.Unmarshal(j, &want); err != nil {
		t.Fatal(err)
	}
	m, err := measure(b)
	if err != nil {
		t.Fatal(err)
	}
	got := m.PCRHex()
	for _, k := range []string{"pcr0", "pcr1", "pcr2", "pcr8"} {
		if got[k] != want[k] {
			t.Errorf("%s = %s, want %s", k, got[k], want[k])
		}
	}
	if m.SigningCertificate == nil || m.SigningCertificate.Subject.Organization[0] != "nitro-signer" {
		t.Fatalf("signing certificate %v", m.SigningCertificate)
	}
	// The package's own encoding of the same section is byte for byte the
	// independent one (the signature itself is random, so re-sign with the
	// fixture's key and compare everything but r ‖ s).
	keyPEM, _ := os.ReadFile(filepath.Join("testdata", "release-key.pem"))
	certPEM, _ := os.ReadFile(filepath.Join("testdata", "release-cert.pem"))
	key := parseTestKey(t, keyPEM)
	unsigned := stripLastSection(t, b)
	var out bytes.Buffer
	sm, err := eif.Sign(&out, bytes.NewReader(unsigned), int64(len(unsigned)), eif.Signer{Certificate: certPEM, Key: key, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(sm.PCR8) != want["pcr8"] || hex.EncodeToString(sm.PCR0) != want["pcr0"] {
		t.Fatalf("Sign reports %x / %x", sm.PCR0, sm.PCR8)
	}
	var ours, theirs []wireSignature
	if err := cbor.Unmarshal(lastSection(t, out.Bytes()), &ours); err != nil {
		t.Fatal(err)
	}
	if err := cbor.Unmarshal(lastSection(t, b), &theirs); err != nil {
		t.Fatal(err)
	}
	oc, tc := u16to8(ours[0].Signature), u16to8(theirs[0].Signature)
	if !slices.Equal(ours[0].SigningCertificate, theirs[0].SigningCertificate) || len(oc) != len(tc) || !bytes.Equal(oc[:len(oc)-96], tc[:len(tc)-96]) {
		t.Fatalf("Sign's section differs from the independent one beyond r ‖ s:\n%x\n%x", oc, tc)
	}
}

// stripLastSection removes a signed image's signature section (the last)
// and fixes the header, giving the image as it was before signing.
func stripLastSection(t testing.TB, b []byte) []byte {
	t.Helper()
	n := int(binary.BigEndian.Uint16(b[26:]))
	off := binary.BigEndian.Uint64(b[28+8*(n-1):])
	out := bytes.Clone(b[:off])
	binary.BigEndian.PutUint16(out[26:], uint16(n-1))
	binary.BigEndian.PutUint64(out[28+8*(n-1):], 0)
	binary.BigEndian.PutUint64(out[28+8*eif.MaxSections+8*(n-1):], 0)
	c, _ := crcOf(out)
	binary.BigEndian.PutUint32(out[eif.HeaderSize-4:], c)
	return out
}

func parseTestKey(t testing.TB, b []byte) *ecdsa.PrivateKey {
	t.Helper()
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			t.Fatal("no EC PRIVATE KEY block")
		}
		if block.Type == "EC PRIVATE KEY" {
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
	}
}

func TestSignRoundTrip(t *testing.T) {
	s, der := newSigner(t)
	unsigned := write(t, standard())
	before, err := measure(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	reported, err := eif.Sign(&out, bytes.NewReader(unsigned), int64(len(unsigned)), s)
	if err != nil {
		t.Fatal(err)
	}
	after, err := measure(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after.PCR0, before.PCR0) || !bytes.Equal(after.PCR1, before.PCR1) || !bytes.Equal(after.PCR2, before.PCR2) {
		t.Fatal("signing changed PCR0, 1 or 2")
	}
	if !bytes.Equal(after.PCR8, pcr(der)) || !bytes.Equal(reported.PCR8, after.PCR8) {
		t.Fatalf("PCR8 %x (reported %x), want %x", after.PCR8, reported.PCR8, pcr(der))
	}
	if !bytes.Equal(after.SigningCertificate.Raw, der) || after.Header.CRC != reported.Header.CRC {
		t.Fatal("signing certificate or CRC differ from what Sign reported")
	}
	if got := after.Sections[len(after.Sections)-1]; got != eif.SectionSignature {
		t.Fatalf("last section %d", got)
	}
	// Two signatures by one key give one PCR8; another key another.
	other, otherDER := newSigner(t)
	if m, _ := measure(signedImage(t, standard(), s)); !bytes.Equal(m.PCR8, after.PCR8) {
		t.Fatal("PCR8 depends on more than the certificate")
	}
	if m, _ := measure(signedImage(t, standard(), other)); !bytes.Equal(m.PCR8, pcr(otherDER)) || bytes.Equal(m.PCR8, after.PCR8) {
		t.Fatal("another certificate gave the same PCR8")
	}
	// The test encoder's section is accepted too (a control for the
	// negative matrix, which mutates it).
	if _, err := measure(withSection(t, standard(), goodParts(t, s, before.PCR0).build(t))); err != nil {
		t.Fatalf("independently encoded section: %v", err)
	}
}

func TestMeasureRefusesBadSignatures(t *testing.T) {
	s, _ := newSigner(t)
	unsigned, _ := measure(write(t, standard()))
	pcr0 := unsigned.PCR0
	otherImage := standard()
	otherImage.Sections[4].Data = []byte("another customer ramdisk")
	other, _ := measure(write(t, otherImage))
	otherKey := mustKey(t, elliptic.P384())
	otherCert, _ := newSignerFor(t, otherKey)
	p256, _ := newSignerFor(t, mustKey(t, elliptic.P256()))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, _ := newSignerFor(t, rsaKey)
	good := func() parts { return goodParts(t, s, pcr0) }
	mutate := func(f func(p *parts)) []byte { p := good(); f(&p); return p.build(t) }
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[10] ^= 1; return b }

	tests := []struct {
		name    string
		section []byte
		want    error
	}{
		{"bad_signature_over_other_pcr0", lastSection(t, signedImage(t, otherImage, s)), eif.ErrSignedPCR0},
		{"bad_payload_other_pcr0", mutate(func(p *parts) { p.payload = mustCBOR(t, wirePCRInfo{0, ints(other.PCR0)}) }), eif.ErrSignedPCR0},
		{"bad_payload_pcr1_index", mutate(func(p *parts) { p.payload = mustCBOR(t, wirePCRInfo{1, ints(pcr0)}) }), eif.ErrSignedPCR0},
		{"bad_payload_byte_string", mutate(func(p *parts) {
			p.payload = mustCBOR(t, struct {
				RegisterIndex int    `cbor:"register_index"`
				RegisterValue []byte `cbor:"register_value"`
			}{0, pcr0})
		}), eif.ErrSignature},
		{"bad_signature_flipped", mutate(func(p *parts) { p.sig = flip }), eif.ErrSignatureInvalid},
		{"bad_signed_by_another_key", mutate(func(p *parts) { p.key = otherKey }), eif.ErrSignatureInvalid},
		{"bad_signature_short", mutate(func(p *parts) { p.sig = func(b []byte) []byte { return b[:95] } }), eif.ErrSignature},
		{"bad_protected_es256", mutate(func(p *parts) { p.protected = []byte{0xa1, 0x01, 0x26} }), eif.ErrSignature},
		{"bad_protected_extra_header", mutate(func(p *parts) { p.protected = []byte{0xa2, 0x01, 0x38, 0x22, 0x04, 0x41, 0x00} }), eif.ErrSignature},
		{"bad_unprotected_header", mutate(func(p *parts) { p.unprotected = map[int]any{4: []byte("kid")} }), eif.ErrSignature},
		{"bad_cose_tagged", mutate(func(p *parts) { p.cose = func(b []byte) []byte { return append([]byte{0xd2}, b...) } }), eif.ErrSignature},
		{"bad_cose_not_cbor", mutate(func(p *parts) { p.cose = func([]byte) []byte { return []byte("not cose") } }), eif.ErrSignature},
		{"bad_cert_not_pem", mutate(func(p *parts) { p.cert = []byte("not a certificate") }), eif.ErrSigningCertificate},
		{"bad_cert_garbage_der", mutate(func(p *parts) {
			p.cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}})
		}), eif.ErrSigningCertificate},
		{"bad_cert_two_blocks", mutate(func(p *parts) { p.cert = append(bytes.Clone(p.cert), p.cert...) }), eif.ErrSigningCertificate},
		{"bad_cert_text_before", mutate(func(p *parts) { p.cert = append([]byte("Bag Attributes\n"), p.cert...) }), eif.ErrSigningCertificate},
		{"bad_cert_private_key_block", mutate(func(p *parts) { p.cert = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}) }), eif.ErrSigningCertificate},
		{"bad_cert_p256", mutate(func(p *parts) { p.cert, p.key, p.protected = p256.Certificate, p256.Key, []byte{0xa1, 0x01, 0x26} }), eif.ErrSigningCertificate},
		{"bad_cert_rsa", mutate(func(p *parts) { p.cert = rsaSigner.Certificate }), eif.ErrSigningCertificate},
		{"bad_cert_of_another_key", mutate(func(p *parts) { p.cert = otherCert.Certificate }), eif.ErrSignatureInvalid},
		{"bad_byte_strings_not_integer_arrays", func() []byte {
			p := good()
			full := p.build(t)
			var w []wireSignature
			cbor.Unmarshal(full, &w)
			return mustCBOR(t, []map[string][]byte{{"signing_certificate": p.cert, "signature": u16to8(w[0].Signature)}})
		}(), eif.ErrSignature},
		{"bad_two_pcr_signatures", func() []byte {
			var w []wireSignature
			cbor.Unmarshal(good().build(t), &w)
			return mustCBOR(t, append(w, w[0]))
		}(), eif.ErrSignature},
		{"bad_empty_list", []byte{0x80}, eif.ErrSignature},
		{"bad_extra_key", func() []byte {
			var w []wireSignature
			cbor.Unmarshal(good().build(t), &w)
			return mustCBOR(t, []map[string]any{{"signing_certificate": w[0].SigningCertificate, "signature": w[0].Signature, "note": 1}})
		}(), eif.ErrSignature},
		{"bad_keys_reordered", func() []byte {
			var w []wireSignature
			cbor.Unmarshal(good().build(t), &w)
			return mustCBOR(t, []struct {
				Signature          []uint16 `cbor:"signature"`
				SigningCertificate []uint16 `cbor:"signing_certificate"`
			}{{w[0].Signature, w[0].SigningCertificate}})
		}(), eif.ErrSignature},
		{"bad_indefinite_list", func() []byte {
			b := good().build(t)
			return append(append([]byte{0x9f}, b[1:]...), 0xff)
		}(), eif.ErrSignature},
		{"bad_trailing_byte", append(good().build(t), 0), eif.ErrSignature},
		{"bad_integer_over_255", func() []byte {
			var w []wireSignature
			cbor.Unmarshal(good().build(t), &w)
			w[0].SigningCertificate[0] = 256 + '-'
			return mustCBOR(t, w)
		}(), eif.ErrSignature},
		{"bad_not_cbor", []byte("nope"), eif.ErrSignature},
		{"bad_empty_section", nil, eif.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := measure(withSection(t, standard(), tt.section))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Measure: %v, want %v", err, tt.want)
			}
			t.Logf("%s: %v", eif.Rule(err), err)
			if m != nil {
				t.Fatal("measurements returned with an error")
			}
			if !errors.Is(err, eif.ErrSignature) || eif.Rule(err) == "" {
				t.Fatalf("%v does not wrap ErrSignature or has no rule", err)
			}
		})
	}
}

func u16to8(v []uint16) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		out[i] = byte(x)
	}
	return out
}

func TestSignRefuses(t *testing.T) {
	s, _ := newSigner(t)
	p256, _ := newSignerFor(t, mustKey(t, elliptic.P256()))
	unsigned := write(t, standard())
	signed := signedImage(t, standard(), s)
	corrupt := bytes.Clone(unsigned)
	corrupt[len(corrupt)-1] ^= 1
	tests := []struct {
		name  string
		image []byte
		s     eif.Signer
		want  error
	}{
		{"bad_already_signed", signed, s, eif.ErrSigned},
		{"bad_corrupt_image", corrupt, s, eif.ErrCRC},
		{"bad_p256_certificate", unsigned, p256, eif.ErrSigningCertificate},
		{"bad_key_not_the_certificates", unsigned, eif.Signer{Certificate: s.Certificate, Key: mustKey(t, elliptic.P384()), Rand: rand.Reader}, nil},
		{"bad_no_randomness", unsigned, eif.Signer{Certificate: s.Certificate, Key: s.Key}, nil},
		{"bad_failing_signer", unsigned, eif.Signer{Certificate: s.Certificate, Key: lyingSigner{s.Key.(*ecdsa.PrivateKey)}, Rand: rand.Reader}, eif.ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := eif.Sign(&out, bytes.NewReader(tt.image), int64(len(tt.image)), tt.s)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Sign: %v, want %v", err, tt.want)
			}
			if out.Len() != 0 {
				t.Fatal("Sign wrote output before failing")
			}
		})
	}
}

// lyingSigner claims a key's public key but signs another digest, as a
// faulty HSM might.
type lyingSigner struct{ k *ecdsa.PrivateKey }

func (l lyingSigner) Public() crypto.PublicKey { return l.k.Public() }
func (l lyingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	other := bytes.Clone(digest)
	other[0] ^= 1
	return l.k.Sign(r, other, opts)
}

func TestRuleNamesEveryFault(t *testing.T) {
	for err, want := range map[error]string{
		eif.ErrCRC: "eif_crc", eif.ErrSignedPCR0: "eif_signed_pcr0", eif.ErrSignatureInvalid: "eif_signature_invalid",
		eif.ErrSigningCertificate: "eif_signing_certificate", eif.ErrSignature: "eif_signature", eif.ErrSigned: "eif_signed",
		errors.New("other"): "",
	} {
		if got := eif.Rule(err); got != want {
			t.Errorf("Rule(%v) = %q, want %q", err, got, want)
		}
	}
}

func FuzzSignature(f *testing.F) {
	s, _ := newSigner(f)
	img := standard()
	signed := signedImage(f, img, s)
	f.Add(lastSection(f, signed))
	b, _ := os.ReadFile(filepath.Join("testdata", "signed.eif"))
	f.Add(lastSection(f, b))
	f.Add([]byte{0x81, 0xa2})
	f.Fuzz(func(t *testing.T, section []byte) {
		if len(section) > 1<<16 {
			return
		}
		withSig := append(img.Sections[:len(img.Sections):len(img.Sections)], eif.Section{Type: eif.SectionSignature, Data: section})
		var buf bytes.Buffer
		if err := eif.Write(&buf, eif.Image{Sections: withSig}); err != nil {
			t.Fatal(err)
		}
		m, err := eif.Measure(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			if !errors.Is(err, eif.ErrSignature) {
				t.Fatalf("a signature section fault not marked ErrSignature: %v", err)
			}
			return
		}
		// Accepted: a verified certificate and its PCR8, and the same
		// section on another image is refused.
		if m.SigningCertificate == nil || !bytes.Equal(m.PCR8, pcr(m.SigningCertificate.Raw)) {
			t.Fatal("accepted without a certificate matching PCR8")
		}
		other := slices.Clone(withSig)
		other[4] = eif.Section{Type: eif.SectionRamdisk, Data: []byte("other")}
		buf.Reset()
		eif.Write(&buf, eif.Image{Sections: other})
		if _, err := eif.Measure(bytes.NewReader(buf.Bytes()), int64(buf.Len())); !errors.Is(err, eif.ErrSignedPCR0) {
			t.Fatalf("the section verified on another image: %v", err)
		}
	})
}

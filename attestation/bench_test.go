package attestation_test

import (
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
)

// BenchmarkVerify verifies one real AWS document (four intermediates, so five
// P-384 signature checks: the COSE signature and four certificate links).
// BenchmarkVerifySignaturesOnly performs exactly those five checks and
// nothing else, so the ratio of the two is the verifier's overhead.
func BenchmarkVerify(b *testing.B) {
	doc := testvectors.Read(b, "attestation", "nitro-validator-2026-01-03-nondebug-indefmap.cbor")
	p := attestation.Policy{At: time.Unix(1767472867, 0)}
	if _, err := attestation.Verify(doc, p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := attestation.Verify(doc, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignaturesOnly(b *testing.B) {
	doc := testvectors.Read(b, "attestation", "nitro-validator-2026-01-03-nondebug-indefmap.cbor")
	d, err := attestation.Verify(doc, attestation.Policy{At: time.Unix(1767472867, 0)})
	if err != nil {
		b.Fatal(err)
	}
	// Pre-extract what each signature check needs, outside the loop.
	type check struct {
		key    *ecdsa.PublicKey
		digest []byte
		r, s   *big.Int
	}
	var checks []check
	for i := 0; i+1 < len(d.Chain); i++ {
		child, parent := d.Chain[i], d.Chain[i+1]
		sum := sha512.Sum384(child.RawTBSCertificate)
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(child.Signature, &sig); err != nil {
			b.Fatal(err)
		}
		checks = append(checks, check{parent.PublicKey.(*ecdsa.PublicKey), sum[:], sig.R, sig.S})
	}
	var msg struct {
		_           struct{} `cbor:",toarray"`
		Protected   []byte
		Unprotected map[int]any
		Payload     []byte
		Signature   []byte
	}
	if err := cbor.Unmarshal(doc, &msg); err != nil {
		b.Fatal(err)
	}
	sum := sha512.Sum384(attestation.SigStructure(msg.Protected, msg.Payload))
	checks = append(checks, check{d.Certificate.PublicKey.(*ecdsa.PublicKey), sum[:],
		new(big.Int).SetBytes(msg.Signature[:48]), new(big.Int).SetBytes(msg.Signature[48:])})
	if len(checks) != 5 {
		b.Fatalf("%d signature checks, want 5", len(checks))
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range checks {
			if !ecdsa.Verify(c.key, c.digest, c.r, c.s) {
				b.Fatal("signature does not verify")
			}
		}
	}
}

package attestation_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
)

// A client verifies a document with its pinned PCRs and the nonce it sent;
// a development root must be given explicitly.
func ExampleVerify() {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	dev, _ := issuer.NewAuthority(now.Add(-time.Hour))
	is, _ := dev.NewIssuer(now, issuer.Options{})
	pcrs := map[int][]byte{0: bytes.Repeat([]byte{1}, 48), 1: bytes.Repeat([]byte{2}, 48), 2: bytes.Repeat([]byte{3}, 48)}
	nonce := []byte("a fresh 16+ byte nonce")
	doc, _ := is.Issue(issuer.Payload{Timestamp: now, PCRs: pcrs, Nonce: nonce})

	policy := attestation.Policy{
		Roots:  []*x509.Certificate{dev.Root},
		PCRs:   pcrs,
		Nonce:  nonce,
		MaxAge: 5 * time.Minute,
		At:     now.Add(time.Second),
	}
	d, err := attestation.Verify(doc, policy)
	fmt.Println(err, d.Debug, len(d.PCRs))

	// Another nonce: the rule that failed is named.
	policy.Nonce = []byte("an older nonce of 16+ bytes")
	_, err = attestation.Verify(doc, policy)
	fmt.Println(errors.Is(err, attestation.ErrNonceMismatch), attestation.Rule(err))
	// Output:
	// <nil> false 3
	// true nonce_mismatch
}

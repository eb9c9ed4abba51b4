package envelope_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// TestRefusalsNeverQuoteTheParentsBytes: the route, the certificate chain
// and everything before the caller's signature verifies come from the
// parent. The enclave signs its refusals, so their messages must not carry
// text the parent chose (issue 13, finding 9's rule).
func TestRefusalsNeverQuoteTheParentsBytes(t *testing.T) {
	const lie = "visit-evil.example-recover"
	p := newPKI(t)
	broker := p.caller(t, "spiffe://td/broker", x509.ExtKeyUsageClientAuth)
	bk := broker.signer.(*ecdsa.PrivateKey)
	thumb := func(c caller) string { s := sha256Sum(c.leaf); return base64.RawURLEncoding.EncodeToString(s[:]) }
	// A chain from a CA the enclave does not trust, whose names are the
	// parent's text: x509's errors name the candidate authority.
	evilCA, evilKey, err := devpki.NewCA(lie, now)
	if err != nil {
		t.Fatal(err)
	}
	evilLeaf, _, err := devpki.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: lie},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, evilCA, evilKey, now)
	if err != nil {
		t.Fatal(err)
	}
	evil := caller{leaf: evilLeaf.Raw, chain: [][]byte{evilLeaf.Raw, evilCA.Raw}}
	tests := []struct {
		name  string
		route string
		body  []byte
		chain [][]byte
	}{
		{"bad_alg_named_by_the_parent", "v1/m", rawJWS(t, bk, `{"alg":"`+lie+`","x5t#S256":"`+thumb(broker)+`"}`, "{}"), broker.chain},
		{"bad_header_key_named_by_the_parent", "v1/m", rawJWS(t, bk, `{"alg":"ES256","x5t#S256":"`+thumb(broker)+`","`+lie+`":1}`, "{}"), broker.chain},
		{"bad_header_duplicate_named_by_the_parent", "v1/m", rawJWS(t, bk, `{"alg":"ES256","`+lie+`":1,"`+lie+`":2}`, "{}"), broker.chain},
		{"bad_chain_named_by_the_parent", "v1/m", rawJWS(t, bk, `{"alg":"ES256","x5t#S256":"`+thumb(evil)+`"}`, "{}"), evil.chain},
		{"bad_route_named_by_the_parent", "v1/" + lie, sign(t, broker, nil), broker.chain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifier(p).Verify(tt.route, tt.body, tt.chain)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "evil") {
				t.Fatalf("the refusal quotes the parent's text: %v", err)
			}
		})
	}
}

package attestation_test

import (
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
)

// FuzzVerify feeds arbitrary bytes to Verify under a development root and the
// AWS root. Invariants: no panic; a document comes back exactly when the
// error is nil; every error wraps one of the package's sentinels.
func FuzzVerify(f *testing.F) {
	a, err := issuer.NewAuthority(t0.Add(-time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	is, err := a.NewIssuer(t0, issuer.Options{})
	if err != nil {
		f.Fatal(err)
	}
	sim, err := is.Issue(issuer.Payload{Timestamp: t0, PCRs: simPCRs(), Nonce: testNonce, UserData: testUserData})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sim, false)
	for _, path := range testvectors.Glob(f, "attestation", "*") {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		switch filepath.Ext(path) {
		case ".cbor":
			f.Add(b, true)
		case ".b64":
			if d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil {
				f.Add(d, true)
			}
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte, aws bool) {
		p := attestation.Policy{Roots: []*x509.Certificate{a.Root}, At: t0, AllowDebug: true}
		if aws {
			// Inside the validity of the real documents' chains would need
			// per-document times; the root alone exercises the same paths.
			p = attestation.Policy{At: time.Unix(1674047239, 0), AllowDebug: true}
		}
		d, err := attestation.Verify(doc, p)
		if (d == nil) == (err == nil) {
			t.Fatalf("Verify returned document %v with error %v", d != nil, err)
		}
		if err == nil {
			return
		}
		if attestation.Rule(err) == "" {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
	})
}

package envelope_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// TestTwoCertificatesOfOneRoleCannotFillTheReplayCacheForAll: shares were
// per certificate and half the cache, so two certificates of one role (two
// workers, or one worker across an SVID renewal) filled the generation and
// the admin was refused overloaded. A role's callers together now hold at
// most the role's part of the cache.
func TestTwoCertificatesOfOneRoleCannotFillTheReplayCacheForAll(t *testing.T) {
	p := newPKI(t)
	w1 := p.caller(t, "spiffe://td/worker", x509.ExtKeyUsageClientAuth)
	w2 := p.caller(t, "spiffe://td/worker", x509.ExtKeyUsageClientAuth)
	admin := p.caller(t, "spiffe://td/admin", x509.ExtKeyUsageClientAuth)
	v := verifier(p)
	// The configuration's defaults with two roles: each role half the
	// cache, each certificate half its role's part.
	v.Replay = envelope.NewReplay(time.Minute, 1024, 1024/2, 1024/4, now)
	accepted := 0
	for _, w := range []caller{w1, w2} {
		for range 1024 / 2 {
			_, err := v.Verify("v1/m", sign(t, w, nil), w.chain)
			switch api.CodeOf(err) {
			case api.CodeOverloaded:
			default:
				if err != nil {
					t.Fatal(err)
				}
				accepted++
			}
		}
	}
	if accepted != 1024/2 {
		t.Fatalf("the workers got %d entries, want their role's %d", accepted, 1024/2)
	}
	if _, err := v.Verify("v1/m", sign(t, admin, nil), admin.chain); err != nil {
		t.Fatalf("the admin after two worker certificates used their shares: %v", err)
	}
}

// TestRefusalsNeverQuoteTheForwardedChain: the parent forwards a chain of
// its own making with a request it signed for it; the enclave's signed
// refusal must not carry text from those certificates (finding 9's rule:
// parent-chosen bytes never appear in a signed answer).
func TestRefusalsNeverQuoteTheForwardedChain(t *testing.T) {
	p := newPKI(t)
	const planted = "RECOVER AT https://evil.example"
	// An "intermediate" named like the leaf's issuer, whose key did not
	// sign the leaf: crypto/x509 names it in its UnknownAuthorityError.
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	itmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: planted},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	ider, err := x509.CreateCertificate(rand.Reader, itmpl, itmpl, &ik.PublicKey, ik)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://td/admin")
	ltmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "leaf"}, URIs: []*url.URL{u},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	fakeIssuer := &x509.Certificate{Subject: pkix.Name{CommonName: planted}, PublicKey: &other.PublicKey}
	lder, err := x509.CreateCertificate(rand.Reader, ltmpl, fakeIssuer, &lk.PublicKey, other)
	if err != nil {
		t.Fatal(err)
	}
	thumb := sha256.Sum256(lder)
	nonce := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))
	body := rawJWS(t, lk, `{"alg":"ES256","x5t#S256":"`+base64.RawURLEncoding.EncodeToString(thumb[:])+`"}`,
		`{"method":"v1/m","params":{},"nonce":"`+nonce+`","iat":`+itoa(now.Unix())+`,"aud":"s1","enclave":"instance-a"}`)
	_, err = verifier(p).Verify("v1/m", body, [][]byte{lder, ider})
	if api.CodeOf(err) != api.CodeUnauthenticated {
		t.Fatalf("Verify: %v, want unauthenticated", err)
	}
	if strings.Contains(err.Error(), "evil.example") {
		t.Fatalf("the refusal quotes the parent's certificate: %v", err)
	}
}

// TestRefusalsNeverQuoteTheUnauthenticatedHeader: before the signature is
// checked the JWS header is the parent's to write, yet its alg and its
// unknown keys are quoted in the signed refusal.
func TestRefusalsNeverQuoteTheUnauthenticatedHeader(t *testing.T) {
	p := newPKI(t)
	for name, header := range map[string]string{
		"alg":         `{"alg":"RECOVER AT https://evil.example","x5t#S256":"x"}`,
		"unknown_key": `{"alg":"ES256","RECOVER AT https://evil.example":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := base64.RawURLEncoding.EncodeToString([]byte(header))
			_, err := verifier(p).Verify("v1/m", []byte(h+".e30.c2ln"), nil)
			if err == nil || strings.Contains(err.Error(), "evil.example") {
				t.Fatalf("the refusal quotes the parent's header: %v", err)
			}
		})
	}
}

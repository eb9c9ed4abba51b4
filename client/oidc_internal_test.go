package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
)

// FuzzCheckIDToken: no plaintext panics the token checker, and one it
// accepts is a JWS whose claims are the request's.
func FuzzCheckIDToken(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		f.Fatal(err)
	}
	for _, claims := range []string{
		`{"iss":"https://i.example","sub":"a1","aud":"sts.amazonaws.com","exp":100}`,
		`{"sub":"a1","aud":["sts.amazonaws.com"],"exp":100}`,
		`{"sub":"a1","aud":7,"exp":100}`,
	} {
		jws, err := s.Sign([]byte(claims))
		if err != nil {
			f.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
		f.Add(tok)
	}
	f.Add("a.b.c")
	p := &api.OIDCTokenRequest{ActorOmni: "a1", Audience: "sts.amazonaws.com", TTL: 60}
	r := &api.OIDCTokenResponse{KeyID: "k1", Expires: 100}
	f.Fuzz(func(t *testing.T, token string) {
		if checkIDToken(token, p, r) != nil {
			return
		}
		if _, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256}); err != nil {
			t.Fatalf("accepted a token that does not parse: %v", err)
		}
	})
}

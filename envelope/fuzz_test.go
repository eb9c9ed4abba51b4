package envelope_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// FuzzVerifyRequest: no input panics the enclave's request check, every
// failure is a typed *api.Error, and only a correctly signed request
// passes.
func FuzzVerifyRequest(f *testing.F) {
	p := newPKI(f)
	c := p.caller(f, "spiffe://td/broker", x509.ExtKeyUsageClientAuth)
	f.Add(sign(f, c, nil), true)
	f.Add(sign(f, c, func(o *envelope.Outgoing) { o.ReplyKey = replyJWK(f) }), true)
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.AAAA"), false)
	f.Fuzz(func(t *testing.T, body []byte, withChain bool) {
		v := verifier(p)
		chain := c.chain
		if !withChain {
			chain = nil
		}
		got, err := v.Verify("v1/m", body, chain)
		if err == nil {
			if got == nil || got.Caller.Role != "broker" {
				t.Fatalf("accepted without a caller: %+v", got)
			}
			return
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Code == api.CodeInternal {
			t.Fatalf("untyped refusal: %v", err)
		}
	})
}

func FuzzParseUserData(f *testing.F) {
	u := api.UserData{Version: 1, X25519: make([]byte, 32), SignerID: "s1", ConfigSHA256: make([]byte, 32), Epoch: 3}
	b, _ := envelope.MarshalUserData(&u)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := envelope.ParseUserData(b)
		if err != nil {
			if !errors.Is(err, envelope.ErrUserData) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, err := envelope.MarshalUserData(got)
		if err != nil || string(again) != string(b) {
			t.Fatal("accepted user_data does not re-encode to the same bytes")
		}
	})
}

func FuzzVerifyResponse(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := envelope.NewResponseSigner(key)
	req := []byte("req")
	good, _ := s.Sign(req, now, map[string]int{"a": 1}, nil)
	refusal, _ := s.Sign(req, now, nil, api.Errorf(api.CodeStale, "x"))
	f.Add(good)
	f.Add(refusal)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := envelope.VerifyResponse(body, req, func(kid string) *ecdsa.PublicKey {
			if kid == s.KeyID() {
				return &key.PublicKey
			}
			return nil
		})
		if err == nil && r == nil {
			t.Fatal("nil response without error")
		}
		if err != nil && !errors.Is(err, envelope.ErrResponse) && !errors.Is(err, envelope.ErrUnknownKey) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

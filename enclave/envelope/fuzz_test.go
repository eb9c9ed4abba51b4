package envelope_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/envelope"
)

// FuzzVerifyRequest: no input panics the enclave's request check, every
// failure is a typed *envelope.Error, and only a correctly signed request
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
		var e *envelope.Error
		if !errors.As(err, &e) || e.Code == envelope.CodeInternal {
			t.Fatalf("untyped refusal: %v", err)
		}
	})
}

// FuzzDecodeJSON: DecodeJSON never panics, refuses only with ErrJSON, and
// what it accepts has its fields in exactly their case and no object with
// two keys equal under case folding (issue 13 finding 7) — checked against
// strings.EqualFold, the folding encoding/json matches names with.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"x":[1,2,{"y":null}]}}`,
		`{"a":1,"a":2}`,
		`{"a":1,"A":2}`,
		`{"A":1}`,
		`{"\u0041":1}`,
		`{"b":{"k":1,"\u212a":2}}`,
		"{\"b\":{\"k\":1,\"\u212a\":2}}",
		"{\"b\":{\"s\":1,\"\u017f\":2}}",
		"{\"b\":{\"\u03a3\":1,\"\u03c2\":2}}",
		`{"b":{"x":{"chainId":1,"chainID":2}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v struct {
			A any            `json:"a"`
			B map[string]any `json:"b"`
		}
		err := envelope.DecodeJSON(b, &v, 1<<16)
		if err != nil {
			if !errors.Is(err, envelope.ErrJSON) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(b, &top) == nil {
			for k := range top {
				if k != "a" && k != "b" {
					t.Fatalf("accepted key %q, which is no field's exact name", k)
				}
			}
		}
		if k1, k2, found := keysEqualUnderFolding(b); found {
			t.Fatalf("accepted an object with keys %q and %q", k1, k2)
		}
	})
}

// keysEqualUnderFolding finds two keys of one object that strings.EqualFold
// takes for one.
func keysEqualUnderFolding(b []byte) (string, string, bool) {
	type level struct {
		object bool
		keys   []string
		key    bool
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := stack[n-1]
			if top.key {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:n-1]
					continue
				}
				k, _ := tok.(string)
				for _, other := range top.keys {
					if strings.EqualFold(k, other) {
						return other, k, true
					}
				}
				top.keys = append(top.keys, k)
				top.key = false
				continue
			}
			top.key = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, key: true})
		case json.Delim('['):
			stack = append(stack, &level{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

func FuzzParseUserData(f *testing.F) {
	u := envelope.UserData{Version: 1, X25519: make([]byte, 32), SignerID: "s1", ConfigSHA256: make([]byte, 32), Epoch: 3}
	b, _ := u.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := envelope.ParseUserData(b)
		if err != nil {
			if !errors.Is(err, envelope.ErrUserData) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, err := got.Marshal()
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
	refusal, _ := s.Sign(req, now, nil, envelope.Errorf(envelope.CodeStale, "x"))
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

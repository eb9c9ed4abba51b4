package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// oidcCall calls a method with a reply key and returns the result as the
// wire carries it.
func oidcCall[R any](t *testing.T, methods map[string]service.Handler, route string, params any, reply *ecdsa.PrivateKey) (*R, error) {
	t.Helper()
	raw, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	r := &service.Request{Params: raw}
	if reply != nil {
		r.ReplyKey = &jose.JSONWebKey{Key: &reply.PublicKey}
	}
	res, err := methods[route](context.Background(), r)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var out R
	if err := strictjson.Decode(b, &out, 1<<20); err != nil {
		t.Fatalf("%s result %s: %v", route, b, err)
	}
	return &out, nil
}

func newReplyKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The OIDC methods are in the table only with an oidc member.
func TestOIDCMethodsNeedTheConfiguration(t *testing.T) {
	without := service.New(service.Options{Keys: testKeys(t), Clock: time.Now}).Methods(true)
	with := newHarness(t, nil).methods
	for _, route := range []string{api.OIDCDiscovery.Route, api.OIDCToken.Route} {
		if _, ok := without[route]; ok {
			t.Errorf("%s is served without an oidc member", route)
		}
		if _, ok := with[route]; !ok {
			t.Errorf("%s is not served with an oidc member", route)
		}
		if !service.AllMethods()[route] {
			t.Errorf("a role cannot name %s", route)
		}
	}
}

// thumbprint is RFC 7638 computed here, from encoding/json's sorted keys.
func thumbprint(t *testing.T, x, y string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": x, "y": y})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

type testJWK struct {
	Kty, Crv, X, Y, Use, Alg, Kid string
}

// publicKey builds the JWK's public key with crypto/ecdsa, refusing a
// point off the curve.
func (k testJWK) publicKey(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	x, err1 := base64.RawURLEncoding.DecodeString(k.X)
	y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
	if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		t.Fatalf("jwk %+v: coordinates", k)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatalf("jwk %+v: %v", k, err)
	}
	return pub
}

func discovery(t *testing.T, h *harness) (*api.OIDCDiscoveryResponse, []testJWK) {
	t.Helper()
	d, err := oidcCall[api.OIDCDiscoveryResponse](t, h.methods, api.OIDCDiscovery.Route, map[string]any{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []testJWK }
	if err := json.Unmarshal(d.JWKS, &set); err != nil {
		t.Fatal(err)
	}
	return d, set.Keys
}

func TestOIDCDiscovery(t *testing.T) {
	h := newHarness(t, nil)
	d, keys := discovery(t, h)
	wantConf := `{"issuer":"https://oidc.example.com/signer","jwks_uri":"https://keys.example.com/jwks.json",` +
		`"response_types_supported":["id_token"],"subject_types_supported":["public"],` +
		`"id_token_signing_alg_values_supported":["ES256"],` +
		`"claims_supported":["aud","exp","iat","iss","jti","nbf","sub","https://aws.amazon.com/tags"]}`
	if string(d.Configuration) != wantConf {
		t.Fatalf("openid-configuration\n%s\nwant\n%s", d.Configuration, wantConf)
	}
	if d.Issuer != "https://oidc.example.com/signer" || d.JWKSURI != "https://keys.example.com/jwks.json" || d.Epoch != 2 {
		t.Fatalf("discovery %+v", d)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys, want one per epoch (2)", len(keys))
	}
	for i, k := range keys {
		ik, err := h.keys.Issuer(uint32(i + 1))
		if err != nil {
			t.Fatal(err)
		}
		b64 := base64.RawURLEncoding.EncodeToString
		want := testJWK{Kty: "EC", Crv: "P-256", X: b64(ik.X()), Y: b64(ik.Y()), Use: "sig", Alg: "ES256", Kid: thumbprint(t, k.X, k.Y)}
		if k != want || k.Kid != ik.KeyID() {
			t.Fatalf("key %d: %+v, want epoch %d's %+v", i, k, i+1, want)
		}
		k.publicKey(t)
	}
	wantJWKS := `{"keys":[` + jwkJSON(keys[0]) + `,` + jwkJSON(keys[1]) + `]}`
	if string(d.JWKS) != wantJWKS {
		t.Fatalf("jwks\n%s\nwant\n%s", d.JWKS, wantJWKS)
	}
	if d.KeyID != keys[1].Kid {
		t.Fatal("kid is not the current epoch's")
	}
	// go-jose reads the same set.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(d.JWKS, &set); err != nil || len(set.Key(d.KeyID)) != 1 || !set.Key(d.KeyID)[0].Valid() {
		t.Fatalf("go-jose: %v", err)
	}
	// Another replica with the same keyring answers the same bytes.
	d2, _ := discovery(t, newHarness(t, nil))
	if !bytes.Equal(d.Configuration, d2.Configuration) || !bytes.Equal(d.JWKS, d2.JWKS) {
		t.Fatal("discovery is not deterministic")
	}
	// After a rotation the JWKS lists the new epoch last and it signs.
	s, _ := keyring.NewSecret(bytes.Repeat([]byte{0x44}, 32))
	if _, err := h.keys.Add(s); err != nil {
		t.Fatal(err)
	}
	d3, keys3 := discovery(t, h)
	if len(keys3) != 3 || keys3[0] != keys[0] || keys3[1] != keys[1] || d3.KeyID != keys3[2].Kid || d3.Epoch != 3 {
		t.Fatalf("after a rotation: %+v, %d keys", d3, len(keys3))
	}
	empty := service.New(service.Options{Keys: keyring.New(), OIDC: testOIDC()}).Methods(false)
	_, err := empty[api.OIDCDiscovery.Route](context.Background(), &service.Request{Params: []byte(`{}`)})
	wantCode(t, err, api.CodeSignerDisabled)
	_, err = h.methods[api.OIDCDiscovery.Route](context.Background(), &service.Request{Params: []byte(`{"issuer":"https://evil"}`)})
	wantCode(t, err, api.CodeBadRequest)
}

func jwkJSON(k testJWK) string {
	return `{"kty":"` + k.Kty + `","crv":"` + k.Crv + `","x":"` + k.X + `","y":"` + k.Y + `","use":"sig","alg":"ES256","kid":"` + k.Kid + `"}`
}

// openToken decrypts the JWE with key and returns the compact JWS.
func openToken(t *testing.T, jwe string, key *ecdsa.PrivateKey) (string, error) {
	t.Helper()
	obj, err := jose.ParseEncryptedCompact(jwe, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("token_jwe: %v", err)
	}
	var header map[string]json.RawMessage
	protected, err := base64.RawURLEncoding.DecodeString(strings.Split(jwe, ".")[0])
	if err != nil || json.Unmarshal(protected, &header) != nil || len(header) != 3 ||
		string(header["alg"]) != `"ECDH-ES"` || string(header["enc"]) != `"A256GCM"` || header["epk"] == nil {
		t.Fatalf("JWE header %s: want exactly alg ECDH-ES, enc A256GCM, epk", protected)
	}
	if parts := strings.Split(jwe, "."); len(parts) != 5 || parts[1] != "" {
		t.Fatalf("JWE of %d parts, encrypted key %q", len(parts), parts[1])
	}
	b, err := obj.Decrypt(key)
	return string(b), err
}

func TestOIDCTokenVerifiesWithTheJWKS(t *testing.T) {
	h := newHarness(t, nil)
	d, keys := discovery(t, h)
	reply := newReplyKey(t)
	upper := strings.ToUpper(omni)
	res, err := oidcCall[api.OIDCTokenResponse](t, h.methods, api.OIDCToken.Route,
		map[string]any{"actor_omni": upper, "audience": "other.example", "ttl": 900}, reply)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyID != d.KeyID || res.Epoch != 2 || res.Expires != now.Unix()+900 {
		t.Fatalf("result %+v", res)
	}
	if _, err := openToken(t, res.Token, newReplyKey(t)); err == nil {
		t.Fatal("the JWE opens with another key")
	}
	jws, err := openToken(t, res.Token, reply)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", jws)
	}
	if strings.Contains(res.Token, parts[1]) || strings.Contains(res.Token, parts[2]) {
		t.Fatal("the JWE carries the token in the clear")
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return b
	}
	if got, want := string(dec(parts[0])), `{"alg":"ES256","kid":"`+d.KeyID+`","typ":"JWT"}`; got != want {
		t.Fatalf("header %s, want %s", got, want)
	}
	var claims map[string]any
	if err := json.Unmarshal(dec(parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	jti, _ := claims["jti"].(string)
	if b, err := hex.DecodeString(jti); err != nil || len(b) != 16 || jti != strings.ToLower(jti) {
		t.Fatalf("jti %q is not 16 bytes of lowercase hex", jti)
	}
	iat := float64(now.Unix())
	want := map[string]any{
		"iss": "https://oidc.example.com/signer", "sub": omni, "aud": "other.example",
		"iat": iat, "nbf": iat, "exp": iat + 900, "jti": jti,
		"https://aws.amazon.com/tags": map[string]any{
			"principal_tags":      map[string]any{"actor_omni": []any{omni}},
			"transitive_tag_keys": []any{"actor_omni"},
		},
	}
	if !reflect.DeepEqual(claims, want) {
		t.Fatalf("claims\n%v\nwant\n%v", claims, want)
	}
	// The signature: r ‖ s over SHA-256 of the signing input, with the
	// JWKS key of the kid, checked with crypto/ecdsa.
	var signer *ecdsa.PublicKey
	for _, k := range keys {
		if k.Kid == d.KeyID {
			signer = k.publicKey(t)
		}
	}
	sig := dec(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(signer, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the token does not verify with the JWKS key of its kid")
	}
	if other := keys[0].publicKey(t); ecdsa.Verify(other, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the token verifies with the previous epoch's key")
	}
	// go-jose agrees, and refuses a token with one claim changed.
	var set jose.JSONWebKeySet
	json.Unmarshal(d.JWKS, &set)
	parsed, err := jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Verify(set.Key(d.KeyID)[0]); err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(dec(parts[1]), []byte(omni), []byte(strings.Repeat("a", 64)), 2)) + "." + parts[2]
	if p, err := jose.ParseSignedCompact(forged, []jose.SignatureAlgorithm{jose.ES256}); err == nil {
		if _, err := p.Verify(set.Key(d.KeyID)[0]); err == nil {
			t.Fatal("a token for another actor verifies")
		}
	}
	// Every token has its own jti.
	res2, err := oidcCall[api.OIDCTokenResponse](t, h.methods, api.OIDCToken.Route,
		map[string]any{"actor_omni": omni, "audience": "other.example", "ttl": 900}, reply)
	if err != nil {
		t.Fatal(err)
	}
	jws2, _ := openToken(t, res2.Token, reply)
	var claims2 map[string]any
	json.Unmarshal(dec(strings.Split(jws2, ".")[1]), &claims2)
	if claims2["jti"] == jti {
		t.Fatal("two tokens share a jti")
	}
}

func TestOIDCTokenRefuses(t *testing.T) {
	h := newHarness(t, nil)
	reply := newReplyKey(t)
	p := func(mutate func(map[string]any)) map[string]any {
		m := map[string]any{"actor_omni": omni, "audience": "sts.amazonaws.com", "ttl": 3600}
		mutate(m)
		return m
	}
	tests := []struct {
		name   string
		params any
		reply  *ecdsa.PrivateKey
		want   api.Code
	}{
		{"bad_omni_short", p(func(m map[string]any) { m["actor_omni"] = omni[:62] }), reply, api.CodeInvalidOmni},
		{"bad_omni_0x", p(func(m map[string]any) { m["actor_omni"] = "0x" + omni[2:] }), reply, api.CodeInvalidOmni},
		{"bad_omni_not_hex", p(func(m map[string]any) { m["actor_omni"] = "zz" + omni[2:] }), reply, api.CodeInvalidOmni},
		{"bad_omni_absent", p(func(m map[string]any) { delete(m, "actor_omni") }), reply, api.CodeInvalidOmni},
		{"bad_audience_other", p(func(m map[string]any) { m["audience"] = "evil.example" }), reply, api.CodeAudienceNotAllowed},
		{"bad_audience_case", p(func(m map[string]any) { m["audience"] = "STS.amazonaws.com" }), reply, api.CodeAudienceNotAllowed},
		{"bad_audience_empty", p(func(m map[string]any) { m["audience"] = "" }), reply, api.CodeAudienceNotAllowed},
		{"bad_audience_padded", p(func(m map[string]any) { m["audience"] = "sts.amazonaws.com " }), reply, api.CodeAudienceNotAllowed},
		{"bad_ttl_below_min", p(func(m map[string]any) { m["ttl"] = 59 }), reply, api.CodeTTLOutOfRange},
		{"bad_ttl_above_max", p(func(m map[string]any) { m["ttl"] = 3601 }), reply, api.CodeTTLOutOfRange},
		{"bad_ttl_zero", p(func(m map[string]any) { delete(m, "ttl") }), reply, api.CodeTTLOutOfRange},
		{"bad_ttl_negative", p(func(m map[string]any) { m["ttl"] = -3600 }), reply, api.CodeTTLOutOfRange},
		{"bad_ttl_fraction", p(func(m map[string]any) { m["ttl"] = 60.5 }), reply, api.CodeBadRequest},
		{"bad_ttl_string", p(func(m map[string]any) { m["ttl"] = "3600" }), reply, api.CodeBadRequest},
		{"bad_ttl_huge", p(func(m map[string]any) { m["ttl"] = 1e30 }), reply, api.CodeBadRequest},
		{"bad_unknown_field", p(func(m map[string]any) { m["sub"] = "someone" }), reply, api.CodeBadRequest},
		{"bad_audience_array", p(func(m map[string]any) { m["audience"] = []string{"sts.amazonaws.com"} }), reply, api.CodeBadRequest},
		{"bad_no_reply_key", p(func(map[string]any) {}), nil, api.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := oidcCall[api.OIDCTokenResponse](t, h.methods, api.OIDCToken.Route, tt.params, tt.reply)
			if res != nil {
				t.Fatalf("minted %+v", res)
			}
			wantCode(t, err, tt.want)
		})
	}
	t.Run("bad_reply_key_not_ecdh", func(t *testing.T) {
		raw, _ := json.Marshal(p(func(map[string]any) {}))
		_, err := h.methods[api.OIDCToken.Route](context.Background(), &service.Request{Params: raw, ReplyKey: &jose.JSONWebKey{Key: []byte("symmetric")}})
		wantCode(t, err, api.CodeBadRequest)
	})
	t.Run("bad_no_keys", func(t *testing.T) {
		empty := service.New(service.Options{Keys: keyring.New(), OIDC: testOIDC(), Clock: time.Now}).Methods(false)
		_, err := oidcCall[api.OIDCTokenResponse](t, empty, api.OIDCToken.Route, p(func(map[string]any) {}), reply)
		wantCode(t, err, api.CodeSignerDisabled)
	})
	// The bounds themselves are allowed.
	for _, ttl := range []int{60, 3600} {
		if _, err := oidcCall[api.OIDCTokenResponse](t, h.methods, api.OIDCToken.Route, p(func(m map[string]any) { m["ttl"] = ttl }), reply); err != nil {
			t.Fatalf("ttl %d: %v", ttl, err)
		}
	}
}

// The JWKS lists at most the newest hundred epochs' keys (what IAM reads of
// a JWKS), the signing key among them, last.
func TestOIDCJWKSListsTheNewestHundredKeys(t *testing.T) {
	k := keyring.New()
	for i := range 101 {
		b := make([]byte, 32)
		b[0], b[1] = 7, byte(i)
		s, _ := keyring.NewSecret(b)
		if _, err := k.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	m := service.New(service.Options{Keys: k, Clock: time.Now, OIDC: testOIDC()}).Methods(false)
	res, err := m[api.OIDCDiscovery.Route](context.Background(), &service.Request{Params: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	d := res.(*api.OIDCDiscoveryResponse)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(d.JWKS, &set); err != nil {
		t.Fatal(err)
	}
	first, _ := k.Issuer(2)
	if len(set.Keys) != 100 || set.Keys[99].Kid != d.KeyID || set.Keys[0].Kid != first.KeyID() || d.Epoch != 101 {
		t.Fatalf("%d keys, last %s, signing %s (epoch %d)", len(set.Keys), set.Keys[len(set.Keys)-1].Kid, d.KeyID, d.Epoch)
	}
}

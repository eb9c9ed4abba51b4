package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/envelope"
)

const (
	fakeIssuer   = "https://issuer.example/oidc"
	fakeAudience = "sts.amazonaws.com"
)

// fakeOIDC is the fake enclave's issuer: one key (epoch 1), and what a
// test changes in the tokens it mints.
type fakeOIDC struct {
	key *ecdsa.PrivateKey
	// tamper changes a token before it is signed and encrypted.
	tamper func(tok *fakeToken)
	// replyKeys are the thumbprints of the reply keys of the token
	// requests, in order; minted the tokens' plaintexts.
	replyKeys []string
	minted    []string
}

// fakeToken is a token on its way out of the fake: its header's kid, its
// claims, the key and content encryption of its JWE, and the answer. A
// plaintext or JWE set by tamper replaces what would be made.
type fakeToken struct {
	kid       string
	claims    map[string]any
	encryptTo crypto.PublicKey
	enc       jose.ContentEncryption
	plaintext []byte
	jwe       string
	answer    api.OIDCTokenResponse
}

// kidOf is the RFC 7638 thumbprint of key, as go-jose computes it.
func kidOf(t testing.TB, key *ecdsa.PublicKey) string {
	t.Helper()
	sum, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Error(err) // Error, not Fatal: the fake's handler calls it
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// fakeDiscovery is a consistent discovery answer for keys, the last one
// signing now.
func fakeDiscovery(t testing.TB, keys ...*ecdsa.PublicKey) *api.OIDCDiscoveryResponse {
	t.Helper()
	var jwks jose.JSONWebKeySet
	for _, k := range keys {
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{Key: k, KeyID: kidOf(t, k), Use: "sig", Algorithm: "ES256"})
	}
	set, err := json.Marshal(jwks)
	if err != nil {
		t.Error(err)
	}
	jwksURI := fakeIssuer + "/jwks.json"
	conf, _ := json.Marshal(map[string]any{
		"issuer": fakeIssuer, "jwks_uri": jwksURI, "response_types_supported": []string{"id_token"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
	})
	return &api.OIDCDiscoveryResponse{Issuer: fakeIssuer, Configuration: conf, JWKSURI: jwksURI, JWKS: set,
		KeyID: kidOf(t, keys[len(keys)-1]), Epoch: uint32(len(keys))}
}

// issuerOf returns the fake's issuer, made on first use. f.mu is held.
func (f *fakeSigner) issuerOf() *fakeOIDC {
	if f.oidc == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		f.oidc = &fakeOIDC{key: key}
	}
	return f.oidc
}

// handleOIDC answers v1/oidc/discovery and v1/oidc-token as the enclave
// does in shape: a token signed with the issuer key, encrypted to the
// request's reply key. f.mu is held.
func (f *fakeSigner) handleOIDC(v *envelope.Verified) (any, error) {
	o := f.issuerOf()
	if v.Method == api.OIDCDiscovery.Route {
		return fakeDiscovery(f.t, &o.key.PublicKey), nil
	}
	var p api.OIDCTokenRequest
	if err := json.Unmarshal(v.Params, &p); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "params")
	}
	if v.ReplyKey == nil {
		return nil, api.Errorf(api.CodeBadRequest, "no reply_key")
	}
	if p.Audience != fakeAudience {
		return nil, api.Errorf(api.CodeAudienceNotAllowed, "audience %q is not allowed", p.Audience)
	}
	o.replyKeys = append(o.replyKeys, kidOf(f.t, v.ReplyKey.Key.(*ecdsa.PublicKey)))
	now := time.Now().Unix()
	kid := kidOf(f.t, &o.key.PublicKey)
	tok := &fakeToken{
		kid: kid, encryptTo: v.ReplyKey.Key, enc: jose.A256GCM,
		claims: map[string]any{"iss": fakeIssuer, "sub": p.ActorOmni, "aud": p.Audience, "iat": now, "nbf": now,
			"exp": now + p.TTL, "jti": "j1"},
		answer: api.OIDCTokenResponse{KeyID: kid, Expires: now + p.TTL, Epoch: 1},
	}
	if o.tamper != nil {
		o.tamper(tok)
	}
	if tok.plaintext == nil {
		claims, _ := json.Marshal(tok.claims)
		tok.plaintext = []byte(forge(f.t, o.key, tok.kid, claims))
	}
	o.minted = append(o.minted, string(tok.plaintext))
	if tok.jwe == "" {
		enc, err := jose.NewEncrypter(tok.enc, jose.Recipient{Algorithm: jose.ECDH_ES, Key: tok.encryptTo}, nil)
		if err == nil {
			var obj *jose.JSONWebEncryption
			if obj, err = enc.Encrypt(tok.plaintext); err == nil {
				tok.jwe, err = obj.CompactSerialize()
			}
		}
		if err != nil {
			f.t.Error(err)
			return nil, api.Errorf(api.CodeInternal, "encrypt")
		}
	}
	tok.answer.Token = tok.jwe
	return tok.answer, nil
}

func oidcToken(c *client.Client) (*client.OIDCToken, error) {
	return c.OIDCToken(context.Background(), fakeOmni, fakeAudience, 5*time.Minute)
}

// TestOIDCTokenIsDecryptedWithAFreshReplyKey: the token is the one the
// enclave signed, decrypted with a reply key made for the call; every
// call makes another.
func TestOIDCTokenIsDecryptedWithAFreshReplyKey(t *testing.T) {
	f := newFakeSigner(t)
	c := f.newClient(t)
	var tokens []*client.OIDCToken
	for range 2 {
		tok, err := oidcToken(c)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	f.mu.Lock()
	o := f.oidc
	replyKeys, minted := o.replyKeys, o.minted
	kid := kidOf(t, &o.key.PublicKey)
	f.mu.Unlock()
	if len(replyKeys) != 2 || replyKeys[0] == replyKeys[1] {
		t.Fatalf("reply keys %q: want a fresh one per call", replyKeys)
	}
	for i, tok := range tokens {
		if tok.Token != minted[i] || tok.KeyID != kid || tok.Epoch != 1 {
			t.Fatalf("token %d: %+v, want the minted token under kid %s", i, tok, kid)
		}
		jws, err := jose.ParseSignedCompact(tok.Token, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(&o.key.PublicKey)
		if err != nil {
			t.Fatalf("token %d does not verify under the issuer key: %v", i, err)
		}
		var claims struct {
			Exp int64 `json:"exp"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil || !tok.Expires.Equal(time.Unix(claims.Exp, 0)) {
			t.Fatalf("token %d: Expires %v, claims %s", i, tok.Expires, payload)
		}
	}
}

// TestOIDCTokenBadAnswersAreRefused: a token the client cannot open with
// its reply key, or whose header and claims are not the request's and the
// answer's, is refused with client.ErrResponse, and the error never
// quotes the token.
func TestOIDCTokenBadAnswersAreRefused(t *testing.T) {
	stranger, _ := newStranger(t)
	for _, tc := range []struct {
		name   string
		tamper func(tok *fakeToken)
	}{
		{"bad_encrypted_to_another_key", func(tok *fakeToken) { tok.encryptTo = &stranger.PublicKey }},
		{"bad_content_encryption_a128gcm", func(tok *fakeToken) { tok.enc = jose.A128GCM }},
		{"bad_not_a_jwe", func(tok *fakeToken) { tok.jwe = "not.a.jwe.at.all" }},
		{"bad_plaintext_not_a_jws", func(tok *fakeToken) { tok.plaintext = []byte("a bearer secret, not a JWS") }},
		{"bad_kid_not_the_answers", func(tok *fakeToken) { tok.kid = "another-kid" }},
		{"bad_sub_another_actor", func(tok *fakeToken) { tok.claims["sub"] = strings.Repeat("ab", 32) }},
		{"bad_aud_another_audience", func(tok *fakeToken) { tok.claims["aud"] = "another-audience" }},
		{"bad_aud_two_audiences", func(tok *fakeToken) { tok.claims["aud"] = []string{fakeAudience, "another-audience"} }},
		{"bad_aud_not_a_string", func(tok *fakeToken) { tok.claims["aud"] = 7 }},
		{"bad_exp_not_the_answers", func(tok *fakeToken) { tok.answer.Expires++ }},
		{"bad_claims_keys_equal_under_folding", func(tok *fakeToken) { tok.claims["SUB"] = "x" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSigner(t)
			f.configure(func(f *fakeSigner) { f.issuerOf().tamper = tc.tamper })
			got, err := oidcToken(f.newClient(t))
			if !errors.Is(err, client.ErrResponse) || got != nil {
				t.Fatalf("got %+v, %v; want client.ErrResponse", got, err)
			}
			f.mu.Lock()
			minted := f.oidc.minted
			f.mu.Unlock()
			if len(minted) != 1 || strings.Contains(err.Error(), minted[0]) {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
	t.Run("aud_as_an_array_of_one", func(t *testing.T) {
		f := newFakeSigner(t)
		f.configure(func(f *fakeSigner) {
			f.issuerOf().tamper = func(tok *fakeToken) { tok.claims["aud"] = []string{fakeAudience} }
		})
		if _, err := oidcToken(f.newClient(t)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOIDCTokenRefusals: the enclave's refusal is its typed code; a ttl
// the wire cannot carry is refused before anything is sent.
func TestOIDCTokenRefusals(t *testing.T) {
	f := newFakeSigner(t)
	c := f.newClient(t)
	_, err := c.OIDCToken(context.Background(), fakeOmni, "another-audience", time.Minute)
	if api.CodeOf(err) != api.CodeAudienceNotAllowed {
		t.Fatalf("another audience: %v, want audience_not_allowed", err)
	}
	for _, ttl := range []time.Duration{0, -time.Second, 1500 * time.Millisecond} {
		var refusal *api.Error
		if _, err := c.OIDCToken(context.Background(), fakeOmni, fakeAudience, ttl); err == nil || errors.As(err, &refusal) {
			t.Fatalf("ttl %v: %v, want a local error", ttl, err)
		}
	}
	if _, calls, _ := f.seen(api.OIDCToken.Route); calls != 1 {
		t.Fatalf("%d calls reached the enclave, want the one with a good ttl", calls)
	}
}

// TestOIDCDiscoveryFromTheFake: the answer passes the checker, and names
// the files to publish.
func TestOIDCDiscoveryFromTheFake(t *testing.T) {
	f := newFakeSigner(t)
	d, err := f.newClient(t).OIDCDiscovery(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := client.CheckOIDCDiscovery(d)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	kid := kidOf(t, &f.oidc.key.PublicKey)
	f.mu.Unlock()
	if pub.KeyID != kid || len(pub.KeyIDs) != 1 || pub.KeyIDs[0] != kid ||
		pub.Configuration.URL != fakeIssuer+"/.well-known/openid-configuration" || pub.Configuration.Path != ".well-known/openid-configuration" ||
		pub.JWKS.URL != fakeIssuer+"/jwks.json" || pub.JWKS.Path != "jwks.json" ||
		string(pub.JWKS.Data) != string(d.JWKS) || string(pub.Configuration.Data) != string(d.Configuration) {
		t.Fatalf("publication %+v", pub)
	}
}

// TestCheckOIDCDiscovery: each rule, broken once.
func TestCheckOIDCDiscovery(t *testing.T) {
	keys := make([]*ecdsa.PublicKey, 3)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = &k.PublicKey
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// jwk is a JWKS key as JSON members, to change.
	jwk := func(k *ecdsa.PublicKey) map[string]any {
		b, _ := json.Marshal(jose.JSONWebKey{Key: k, KeyID: kidOf(t, k)})
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}
	setKeys := func(d *api.OIDCDiscoveryResponse, ks ...any) {
		d.JWKS, _ = json.Marshal(map[string]any{"keys": ks})
	}
	setConf := func(d *api.OIDCDiscoveryResponse, name string, v any) {
		var m map[string]any
		json.Unmarshal(d.Configuration, &m)
		m[name] = v
		d.Configuration, _ = json.Marshal(m)
	}
	moveIssuer := func(issuer, jwksURI string) func(d *api.OIDCDiscoveryResponse) {
		return func(d *api.OIDCDiscoveryResponse) {
			d.Issuer, d.JWKSURI = issuer, jwksURI
			setConf(d, "issuer", issuer)
			setConf(d, "jwks_uri", jwksURI)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(d *api.OIDCDiscoveryResponse)
		want   error
	}{
		{"three_epochs", func(*api.OIDCDiscoveryResponse) {}, nil},
		{"issuer_at_the_root", moveIssuer("https://issuer.example", "https://issuer.example/keys/jwks.json"), nil},
		{"issuer_with_a_trailing_slash", moveIssuer("https://issuer.example/oidc/", "https://issuer.example/oidc/jwks"), nil},
		{"bad_issuer_mismatch", func(d *api.OIDCDiscoveryResponse) { setConf(d, "issuer", "https://another.example/oidc") }, client.ErrOIDCIssuerMismatch},
		{"bad_issuer_mismatch_trailing_slash", func(d *api.OIDCDiscoveryResponse) { setConf(d, "issuer", fakeIssuer+"/") }, client.ErrOIDCIssuerMismatch},
		{"bad_issuer_missing", func(d *api.OIDCDiscoveryResponse) {
			d.Configuration = []byte(`{"jwks_uri":"` + d.JWKSURI + `"}`)
		}, client.ErrOIDCIssuerMismatch},
		{"bad_issuer_http", moveIssuer("http://issuer.example/oidc", "http://issuer.example/oidc/jwks.json"), client.ErrOIDCIssuer},
		{"bad_issuer_query", moveIssuer("https://issuer.example/oidc?a=b", "https://issuer.example/oidc/jwks.json"), client.ErrOIDCIssuer},
		{"bad_issuer_fragment", moveIssuer("https://issuer.example/oidc#x", "https://issuer.example/oidc/jwks.json"), client.ErrOIDCIssuer},
		{"bad_issuer_user", moveIssuer("https://u@issuer.example/oidc", "https://u@issuer.example/oidc/jwks.json"), client.ErrOIDCIssuer},
		{"bad_issuer_empty", moveIssuer("", "https://issuer.example/oidc/jwks.json"), client.ErrOIDCIssuer},
		{"bad_configuration_keys_equal_under_folding", func(d *api.OIDCDiscoveryResponse) {
			d.Configuration = []byte(`{"issuer":"` + d.Issuer + `","ISSUER":"https://evil.example","jwks_uri":"` + d.JWKSURI + `"}`)
		}, client.ErrOIDCMalformed},
		{"bad_configuration_not_an_object", func(d *api.OIDCDiscoveryResponse) { d.Configuration = []byte(`[]`) }, client.ErrOIDCMalformed},
		{"bad_jwks_uri_mismatch", func(d *api.OIDCDiscoveryResponse) { setConf(d, "jwks_uri", fakeIssuer+"/other.json") }, client.ErrOIDCJWKSURIMismatch},
		{"bad_jwks_uri_outside_the_issuer_host", moveIssuer(fakeIssuer, "https://keys.example/oidc/jwks.json"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_outside_the_issuer_port", moveIssuer(fakeIssuer, "https://issuer.example:8443/oidc/jwks.json"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_outside_the_issuer_path", moveIssuer(fakeIssuer, "https://issuer.example/other/jwks.json"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_sibling_path_prefix", moveIssuer(fakeIssuer, "https://issuer.example/oidcx/jwks.json"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_dot_dot", moveIssuer(fakeIssuer, "https://issuer.example/oidc/../jwks.json"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_escaped", moveIssuer(fakeIssuer, "https://issuer.example/oidc/%2e%2e/jwks.json"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_directory", moveIssuer(fakeIssuer, "https://issuer.example/oidc/keys/"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_the_issuer", moveIssuer(fakeIssuer, "https://issuer.example/oidc/"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_query", moveIssuer(fakeIssuer, "https://issuer.example/oidc/jwks.json?v=2"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_http", moveIssuer(fakeIssuer, "http://issuer.example/oidc/jwks.json"), client.ErrOIDCJWKSURIOutside},
		{"bad_jwks_uri_the_configuration", moveIssuer(fakeIssuer, fakeIssuer+"/.well-known/openid-configuration"), client.ErrOIDCJWKSURIOutside},
		{"bad_kid_not_the_thumbprint", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(keys[0])
			k["kid"] = kidOf(t, keys[1])
			setKeys(d, k, jwk(keys[1]), jwk(keys[2]))
		}, client.ErrOIDCKeyID},
		{"bad_kid_missing", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(keys[2])
			delete(k, "kid")
			setKeys(d, jwk(keys[0]), jwk(keys[1]), k)
		}, client.ErrOIDCKeyID},
		{"bad_key_twice", func(d *api.OIDCDiscoveryResponse) { setKeys(d, jwk(keys[2]), jwk(keys[2])) }, client.ErrOIDCKeyID},
		{"bad_key_p384", func(d *api.OIDCDiscoveryResponse) { setKeys(d, jwk(&p384.PublicKey), jwk(keys[2])) }, client.ErrOIDCKey},
		{"bad_key_p384_named_p256", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(&p384.PublicKey)
			k["crv"] = "P-256"
			setKeys(d, k, jwk(keys[2]))
		}, client.ErrOIDCKey},
		{"bad_key_rsa", func(d *api.OIDCDiscoveryResponse) {
			setKeys(d, map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r"}, jwk(keys[2]))
		}, client.ErrOIDCKey},
		{"bad_key_private", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(keys[2])
			k["d"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
			setKeys(d, k)
		}, client.ErrOIDCKey},
		{"bad_key_not_on_the_curve", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(keys[2])
			y, _ := base64.RawURLEncoding.DecodeString(k["y"].(string))
			y[31] ^= 1
			k["y"] = base64.RawURLEncoding.EncodeToString(y)
			setKeys(d, k)
		}, client.ErrOIDCKey},
		{"bad_key_padded_coordinate", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(keys[2])
			k["x"] = k["x"].(string) + "="
			setKeys(d, k)
		}, client.ErrOIDCKey},
		{"bad_key_for_encryption", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(keys[2])
			k["use"] = "enc"
			setKeys(d, k)
		}, client.ErrOIDCKey},
		{"bad_key_alg_es384", func(d *api.OIDCDiscoveryResponse) {
			k := jwk(keys[2])
			k["alg"] = "ES384"
			setKeys(d, k)
		}, client.ErrOIDCKey},
		{"bad_signing_key_not_listed", func(d *api.OIDCDiscoveryResponse) { setKeys(d, jwk(keys[0]), jwk(keys[1])) }, client.ErrOIDCSigningKey},
		{"bad_no_key", func(d *api.OIDCDiscoveryResponse) { setKeys(d) }, client.ErrOIDCSigningKey},
		{"bad_jwks_unknown_member", func(d *api.OIDCDiscoveryResponse) {
			d.JWKS, _ = json.Marshal(map[string]any{"keys": []any{jwk(keys[2])}, "extra": 1})
		}, client.ErrOIDCMalformed},
		{"bad_jwks_not_json", func(d *api.OIDCDiscoveryResponse) { d.JWKS = []byte(`{"keys":[`) }, client.ErrOIDCMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := fakeDiscovery(t, keys...)
			tc.change(d)
			pub, err := client.CheckOIDCDiscovery(d)
			if tc.want == nil {
				if err != nil || pub == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, client.ErrOIDCDiscovery) || pub != nil {
				t.Fatalf("got %+v, %v; want %v", pub, err, tc.want)
			}
		})
	}
}

// FuzzCheckOIDCDiscovery: no input panics, and what is accepted has its
// JWKS under the issuer.
func FuzzCheckOIDCDiscovery(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := fakeDiscovery(f, &k.PublicKey)
	f.Add(d.Issuer, []byte(d.Configuration), d.JWKSURI, []byte(d.JWKS), d.KeyID)
	f.Add("https://a.example", []byte(`{"issuer":"https://a.example","jwks_uri":"https://a.example/k"}`), "https://a.example/k",
		[]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`), "")
	f.Fuzz(func(t *testing.T, issuer string, conf []byte, jwksURI string, jwks []byte, kid string) {
		pub, err := client.CheckOIDCDiscovery(&api.OIDCDiscoveryResponse{Issuer: issuer, Configuration: conf, JWKSURI: jwksURI, JWKS: jwks, KeyID: kid})
		if err != nil {
			if !errors.Is(err, client.ErrOIDCDiscovery) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !strings.HasPrefix(pub.JWKS.URL, strings.TrimSuffix(issuer, "/")+"/") || strings.Contains(pub.JWKS.Path, "..") {
			t.Fatalf("accepted a jwks_uri %q outside %q", pub.JWKS.URL, issuer)
		}
	})
}

package envelope_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type caller struct {
	signer any
	leaf   []byte
	chain  [][]byte
}

type pki struct {
	pool *x509.CertPool
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPKI(t testing.TB) pki {
	t.Helper()
	ca, key, err := devpki.NewCA("test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{pool, ca, key}
}

func (p pki) caller(t testing.TB, uri string, usage x509.ExtKeyUsage) caller {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "c"}, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	cert, key, err := devpki.Issue(tmpl, p.ca, p.key, now)
	if err != nil {
		t.Fatal(err)
	}
	return caller{signer: key, leaf: cert.Raw, chain: [][]byte{cert.Raw}}
}

// ed25519Caller issues an Ed25519 client certificate.
func (p pki) ed25519Caller(t testing.TB, uri string) caller {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkix.Name{CommonName: "ed"}, URIs: []*url.URL{u},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, pub, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return caller{signer: priv, leaf: der, chain: [][]byte{der}}
}

func verifier(p pki) *envelope.Verifier {
	return &envelope.Verifier{SignerID: "s1", CallerCA: p.pool, TrustDomain: "td", Window: time.Minute,
		Clock: func() time.Time { return now }, Instance: "instance-a", Replay: envelope.NewReplay(time.Minute, 1024, 512, 512, now)}
}

func sign(t testing.TB, c caller, mutate func(*envelope.Outgoing)) []byte {
	t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	out := envelope.Outgoing{Method: "v1/m", Params: map[string]int{"a": 1}, Audience: "s1", Enclave: "instance-a", IAT: now, Nonce: nonce}
	if mutate != nil {
		mutate(&out)
	}
	var creds envelope.Credentials
	creds.Leaf = c.leaf
	switch k := c.signer.(type) {
	case *ecdsa.PrivateKey:
		creds.Signer = k
	case ed25519.PrivateKey:
		creds.Signer = k
	}
	b, err := envelope.SignRequest(creds, out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawJWS builds a JWS with a chosen header and payload, signed correctly by
// an ECDSA P-256 key: the tests use it for headers SignRequest never writes.
func rawJWS(t *testing.T, key *ecdsa.PrivateKey, header string, payload string) []byte {
	t.Helper()
	h := base64.RawURLEncoding.EncodeToString([]byte(header))
	p := base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig := esSign(t, key, h+"."+p)
	return []byte(h + "." + p + "." + sig)
}

func TestVerify(t *testing.T) {
	p := newPKI(t)
	broker := p.caller(t, "spiffe://td/broker", x509.ExtKeyUsageClientAuth)
	ed := p.ed25519Caller(t, "spiffe://td/worker")
	other := newPKI(t).caller(t, "spiffe://td/broker", x509.ExtKeyUsageClientAuth)
	serverOnly := p.caller(t, "spiffe://td/broker", x509.ExtKeyUsageServerAuth)
	noID := p.caller(t, "", x509.ExtKeyUsageClientAuth)
	wrongDomain := p.caller(t, "spiffe://elsewhere/broker", x509.ExtKeyUsageClientAuth)
	badRole := p.caller(t, "spiffe://td/Broker/x", x509.ExtKeyUsageClientAuth)
	thumb := func(c caller) string { s := sha256Sum(c.leaf); return base64.RawURLEncoding.EncodeToString(s[:]) }
	nonceB64 := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))
	payload := func(extra string) string {
		return `{"method":"v1/m","params":{},"nonce":"` + nonceB64 + `","iat":` + itoa(now.Unix()) + `,"aud":"s1","enclave":"instance-a"` + extra + `}`
	}
	bk := broker.signer.(*ecdsa.PrivateKey)
	hdr := `{"alg":"ES256","x5t#S256":"` + thumb(broker) + `"}`

	tests := []struct {
		name  string
		body  []byte
		chain [][]byte
		want  api.Code
	}{
		{"valid_es256", sign(t, broker, nil), broker.chain, ""},
		{"valid_eddsa", sign(t, ed, nil), ed.chain, ""},
		{"valid_raw", rawJWS(t, bk, hdr, payload("")), broker.chain, ""},
		{"valid_reply_key", sign(t, broker, func(o *envelope.Outgoing) { o.ReplyKey = replyJWK(t) }), broker.chain, ""},
		{"bad_empty", nil, broker.chain, api.CodeBadRequest},
		{"bad_too_large", make([]byte, envelope.MaxRequest+1), broker.chain, api.CodeBadRequest},
		{"bad_two_parts", []byte("a.b"), broker.chain, api.CodeBadRequest},
		{"bad_header_not_base64", []byte("!!.b.c"), broker.chain, api.CodeBadRequest},
		{"bad_header_extra_param", rawJWS(t, bk, `{"alg":"ES256","x5t#S256":"`+thumb(broker)+`","kid":"x"}`, payload("")), broker.chain, api.CodeBadRequest},
		{"bad_header_duplicate_alg", rawJWS(t, bk, `{"alg":"none","alg":"ES256","x5t#S256":"`+thumb(broker)+`"}`, payload("")), broker.chain, api.CodeBadRequest},
		{"bad_alg_none", rawJWS(t, bk, `{"alg":"none","x5t#S256":"`+thumb(broker)+`"}`, payload("")), broker.chain, api.CodeUnauthenticated},
		{"bad_alg_hs256", rawJWS(t, bk, `{"alg":"HS256","x5t#S256":"`+thumb(broker)+`"}`, payload("")), broker.chain, api.CodeUnauthenticated},
		{"bad_alg_eddsa_for_ecdsa_key", rawJWS(t, bk, `{"alg":"EdDSA","x5t#S256":"`+thumb(broker)+`"}`, payload("")), broker.chain, api.CodeUnauthenticated},
		{"bad_thumbprint_missing", rawJWS(t, bk, `{"alg":"ES256"}`, payload("")), broker.chain, api.CodeUnauthenticated},
		{"bad_thumbprint_other_cert", sign(t, broker, nil), other.chain, api.CodeUnauthenticated},
		{"bad_no_chain", sign(t, broker, nil), nil, api.CodeUnauthenticated},
		{"bad_chain_other_ca", sign(t, other, nil), other.chain, api.CodeUnauthenticated},
		{"bad_chain_garbage", rawJWS(t, bk, `{"alg":"ES256","x5t#S256":"`+thumb(caller{leaf: []byte("junk")})+`"}`, payload("")), [][]byte{[]byte("junk")}, api.CodeUnauthenticated},
		{"bad_server_only_certificate", sign(t, serverOnly, nil), serverOnly.chain, api.CodeUnauthenticated},
		{"bad_no_spiffe_id", sign(t, noID, nil), noID.chain, api.CodeUnauthenticated},
		{"bad_wrong_trust_domain", sign(t, wrongDomain, nil), wrongDomain.chain, api.CodeUnauthenticated},
		{"bad_role_path", sign(t, badRole, nil), badRole.chain, api.CodeUnauthenticated},
		{"bad_signature", flipSignatureBit(t, sign(t, broker, nil)), broker.chain, api.CodeUnauthenticated},
		{"bad_payload_unknown_field", rawJWS(t, bk, hdr, payload(`,"extra":1`)), broker.chain, api.CodeBadRequest},
		{"bad_payload_duplicate_key", rawJWS(t, bk, hdr, payload(`,"aud":"s1"`)), broker.chain, api.CodeBadRequest},
		{"bad_payload_trailing", rawJWS(t, bk, hdr, payload("")+"{}"), broker.chain, api.CodeBadRequest},
		{"bad_params_not_object", rawJWS(t, bk, hdr, strings.Replace(payload(""), `"params":{}`, `"params":[1]`, 1)), broker.chain, api.CodeBadRequest},
		{"bad_iat_float", rawJWS(t, bk, hdr, strings.Replace(payload(""), itoa(now.Unix()), itoa(now.Unix())+".5", 1)), broker.chain, api.CodeBadRequest},
		{"bad_wrong_audience", sign(t, broker, func(o *envelope.Outgoing) { o.Audience = "s2" }), broker.chain, api.CodeWrongAudience},
		{"bad_signed_for_another_instance", sign(t, broker, func(o *envelope.Outgoing) { o.Enclave = "instance-b" }), broker.chain, api.CodeWrongEnclave},
		{"bad_no_instance_named", sign(t, broker, func(o *envelope.Outgoing) { o.Enclave = "" }), broker.chain, api.CodeBadRequest},
		{"bad_wrong_route", sign(t, broker, func(o *envelope.Outgoing) { o.Method = "v1/other" }), broker.chain, api.CodeBadRequest},
		{"bad_stale", sign(t, broker, func(o *envelope.Outgoing) { o.IAT = now.Add(-61 * time.Second) }), broker.chain, api.CodeStale},
		{"bad_future", sign(t, broker, func(o *envelope.Outgoing) { o.IAT = now.Add(61 * time.Second) }), broker.chain, api.CodeStale},
		{"bad_nonce_short", sign(t, broker, func(o *envelope.Outgoing) { o.Nonce = make([]byte, 15) }), broker.chain, api.CodeBadRequest},
		{"bad_nonce_long", sign(t, broker, func(o *envelope.Outgoing) { o.Nonce = make([]byte, 65) }), broker.chain, api.CodeBadRequest},
		{"bad_reply_key_private", rawJWS(t, bk, hdr, payload(`,"reply_key":`+privateJWK(t))), broker.chain, api.CodeBadRequest},
		{"bad_reply_key_not_jwk", rawJWS(t, bk, hdr, payload(`,"reply_key":{"kty":"oct","k":"AAAA"}`)), broker.chain, api.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifier(p)
			got, err := v.Verify("v1/m", tt.body, tt.chain)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Caller.Role == "" || got.Method != "v1/m" {
					t.Fatalf("Verified = %+v", got)
				}
				return
			}
			if code := api.CodeOf(err); code != tt.want {
				t.Fatalf("Verify: %v (code %s), want %s", err, code, tt.want)
			}
		})
	}
}

func TestReplayIsRefusedAndRemembered(t *testing.T) {
	p := newPKI(t)
	c := p.caller(t, "spiffe://td/broker", x509.ExtKeyUsageClientAuth)
	v := verifier(p)
	body := sign(t, c, nil)
	if _, err := v.Verify("v1/m", body, c.chain); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify("v1/m", body, c.chain); api.CodeOf(err) != api.CodeReplayed {
		t.Fatalf("second use: %v, want replayed", err)
	}
	// A refused request does not consume its nonce: the genuine one, sent
	// later, still passes.
	nonce := []byte("fixed nonce 0123")
	stale := sign(t, c, func(o *envelope.Outgoing) { o.Nonce = nonce; o.IAT = now.Add(-2 * time.Minute) })
	if _, err := v.Verify("v1/m", stale, c.chain); api.CodeOf(err) != api.CodeStale {
		t.Fatal(err)
	}
	elsewhere := sign(t, c, func(o *envelope.Outgoing) { o.Nonce = nonce; o.Enclave = "instance-b" })
	if _, err := v.Verify("v1/m", elsewhere, c.chain); api.CodeOf(err) != api.CodeWrongEnclave {
		t.Fatal(err)
	}
	fresh := sign(t, c, func(o *envelope.Outgoing) { o.Nonce = nonce })
	if _, err := v.Verify("v1/m", fresh, c.chain); err != nil {
		t.Fatalf("fresh request after a refused one with the same nonce: %v", err)
	}
}

// TestReplayShareIsPerCaller is finding 5 at the verifier: a caller that
// fills its share of the replay cache is refused as overloaded; another
// caller is not.
func TestReplayShareIsPerCaller(t *testing.T) {
	p := newPKI(t)
	hog := p.caller(t, "spiffe://td/worker", x509.ExtKeyUsageClientAuth)
	admin := p.caller(t, "spiffe://td/admin", x509.ExtKeyUsageClientAuth)
	v := verifier(p)
	v.Replay = envelope.NewReplay(time.Minute, 8, 8, 4, now)
	for i := range 4 {
		if _, err := v.Verify("v1/m", sign(t, hog, nil), hog.chain); err != nil {
			t.Fatalf("request %d within the share: %v", i, err)
		}
	}
	if _, err := v.Verify("v1/m", sign(t, hog, nil), hog.chain); api.CodeOf(err) != api.CodeOverloaded {
		t.Fatalf("past its share: %v, want overloaded", err)
	}
	if _, err := v.Verify("v1/m", sign(t, admin, nil), admin.chain); err != nil {
		t.Fatalf("another caller after the first filled its share: %v", err)
	}
}

func TestResponseRoundTripAndTampering(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := envelope.NewResponseSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("request bytes")
	lookup := func(kid string) *ecdsa.PublicKey {
		if kid == s.KeyID() {
			return &key.PublicKey
		}
		return nil
	}
	body, err := s.Sign(req, now, map[string]string{"address": "0xabc"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := envelope.VerifyResponse(body, req, lookup)
	if err != nil || r.Err != nil || string(r.Result) != `{"address":"0xabc"}` {
		t.Fatalf("VerifyResponse: %+v, %v", r, err)
	}
	refusal, _ := s.Sign(req, now, nil, api.Errorf(api.CodeReplayed, "nonce already used"))
	if r, err := envelope.VerifyResponse(refusal, req, lookup); err != nil || r.Err == nil || r.Err.Code != api.CodeReplayed {
		t.Fatalf("refusal: %+v, %v", r, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	os, _ := envelope.NewResponseSigner(other)
	foreign, _ := os.Sign(req, now, map[string]int{}, nil)
	flipped := []byte(string(body))
	flipped[len(flipped)/2] ^= 1
	for name, tc := range map[string]struct {
		body, req []byte
		want      error
	}{
		"bad_other_request": {body, []byte("another request"), envelope.ErrResponse},
		"bad_unknown_key":   {foreign, req, envelope.ErrUnknownKey},
		"bad_flipped_byte":  {flipped, req, envelope.ErrResponse},
		"bad_empty":         {nil, req, envelope.ErrResponse},
		"bad_not_jws":       {[]byte("x.y.z"), req, envelope.ErrResponse},
		"bad_plain_json":    {[]byte(`{"error":"x"}`), req, envelope.ErrResponse},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := envelope.VerifyResponse(tc.body, tc.req, lookup); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyResponse: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUserDataRoundTripIsDeterministic(t *testing.T) {
	u := api.UserData{Version: 1, X25519: make([]byte, 32), SignerID: "s1", ConfigSHA256: make([]byte, 32), Epoch: 3}
	b, err := envelope.MarshalUserData(&u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := envelope.ParseUserData(b)
	if err != nil || got.Epoch != 3 || got.SignerID != "s1" {
		t.Fatalf("ParseUserData: %+v, %v", got, err)
	}
	// The same map with its keys out of canonical order is refused.
	swapped := rawMap(t, []any{"config_sha256", make([]byte, 32), "v", 1, "epoch", 3, "x25519", make([]byte, 32), "signer_id", "s1"})
	if _, err := envelope.ParseUserData(swapped); !errors.Is(err, envelope.ErrUserData) {
		t.Fatalf("non-deterministic encoding: %v, want ErrUserData", err)
	}
	for name, bad := range map[string]api.UserData{
		"bad_version":     {Version: 2, X25519: make([]byte, 32), SignerID: "s", ConfigSHA256: make([]byte, 32)},
		"bad_x25519":      {Version: 1, X25519: make([]byte, 31), SignerID: "s", ConfigSHA256: make([]byte, 32)},
		"bad_no_signer":   {Version: 1, X25519: make([]byte, 32), ConfigSHA256: make([]byte, 32)},
		"bad_config_hash": {Version: 1, X25519: make([]byte, 32), SignerID: "s"},
	} {
		if _, err := envelope.MarshalUserData(&bad); !errors.Is(err, envelope.ErrUserData) {
			t.Errorf("%s: %v, want ErrUserData", name, err)
		}
	}
}

// TestUnconfiguredRoleTakesNoReplayEntry: a caller whose role the
// configuration does not name is refused before its nonce takes room, so
// certificates of made-up roles cannot fill the cache in shares of their
// own.
func TestUnconfiguredRoleTakesNoReplayEntry(t *testing.T) {
	p := newPKI(t)
	stranger := p.caller(t, "spiffe://td/stranger", x509.ExtKeyUsageClientAuth)
	v := verifier(p)
	v.Roles = map[string]bool{"broker": true}
	v.Replay = envelope.NewReplay(time.Minute, 1, 1, 1, now)
	if _, err := v.Verify("v1/m", sign(t, stranger, nil), stranger.chain); api.CodeOf(err) != api.CodeUnauthorized {
		t.Fatalf("unconfigured role: %v, want unauthorized", err)
	}
	broker := p.caller(t, "spiffe://td/broker", x509.ExtKeyUsageClientAuth)
	if _, err := v.Verify("v1/m", sign(t, broker, nil), broker.chain); err != nil {
		t.Fatalf("the one entry was taken by the refused caller: %v", err)
	}
}

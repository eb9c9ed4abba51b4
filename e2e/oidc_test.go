package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// The enclave as an OIDC issuer, end to end: signerctl oidc publish writes
// the files an operator uploads, an HTTPS server on loopback serves them
// at the issuer, and an independent validator — lestrrat-go/jwx, not the
// go-jose the enclave signs with — fetches the JWKS from there and judges
// the tokens signerctl oidc token prints. signerctl oidc check compares the
// served files with the attested enclave's answer.

const (
	oidcActor         = "3f1e5d7c9b2a4f6e8d0c1b3a5f7e9d2c4b6a8f0e1d3c5b7a9f2e4d6c8b0a1f3e"
	oidcOtherAudience = "https://other-audience.example"
)

// newOIDCEnv is newEnv with the enclave configured as the issuer at
// issuer, for the development audience and one other.
func newOIDCEnv(t *testing.T, issuer string) *env {
	t.Helper()
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := devpki.Generate(pki, time.Now()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(pki, devpki.EnclaveJSON)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	conf["oidc"] = map[string]any{"issuer": issuer, "audiences": []string{devpki.OIDCAudience, oidcOtherAudience}}
	if b, err = json.MarshalIndent(conf, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "enclave.sock")}
	if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
		t.Fatal(err)
	}
	e.startEnclave()
	e.startParent("unix://" + e.sock)
	return e
}

// signerctlRun runs signerctl against e and returns its stdout, stderr
// and exit status.
func (e *env) signerctlRun(args ...string) (stdout, stderr string, exit int) {
	e.t.Helper()
	cmd := execSignerctl(append(args, "--dev", e.dir, "--parent", e.parent)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), exit
}

// issuerServer is the static issuer: dir served over HTTPS at /oidc.
type issuerServer struct {
	srv    *httptest.Server
	dir    string
	issuer string
	caFile string
	client *http.Client
}

func newIssuerServer(t *testing.T) *issuerServer {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewTLSServer(http.StripPrefix("/oidc", http.FileServer(http.Dir(dir))))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &issuerServer{srv: srv, dir: dir, issuer: srv.URL + "/oidc", caFile: caFile, client: srv.Client()}
}

// get fetches url from the issuer.
func (s *issuerServer) get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := s.client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return b
}

// validatorKeys is what a relying party does: read the discovery document
// at the issuer and fetch the JWKS its jwks_uri names, with jwx.
func (s *issuerServer) validatorKeys(t *testing.T) jwk.Set {
	t.Helper()
	var conf struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(s.get(t, s.issuer+"/.well-known/openid-configuration"), &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Issuer != s.issuer {
		t.Fatalf("the served configuration names issuer %q, want %q", conf.Issuer, s.issuer)
	}
	set, err := jwk.Fetch(context.Background(), conf.JWKSURI, jwk.WithHTTPClient(s.client))
	if err != nil {
		t.Fatalf("jwx fetching %s: %v", conf.JWKSURI, err)
	}
	return set
}

type printedToken struct {
	Token   string `json:"token"`
	KeyID   string `json:"kid"`
	Expires int64  `json:"exp"`
	Epoch   uint32 `json:"k3_epoch"`
}

func (e *env) oidcToken(audience string) printedToken {
	e.t.Helper()
	out, stderr, exit := e.signerctlRun("oidc", "token", "--actor", oidcActor, "--audience", audience, "--ttl", "5m")
	if exit != 0 {
		e.t.Fatalf("oidc token: exit %d\n%s", exit, stderr)
	}
	var tok printedToken
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" || tok.KeyID == "" || tok.Epoch != 1 {
		e.t.Fatalf("oidc token printed %s (%v)", out, err)
	}
	return tok
}

// resignToken signs a token's header and payload (payload, if not empty,
// replaces its own) with key: ES256 by hand, so that neither the
// enclave's JOSE library nor the validator's makes the forgery.
func resignToken(t *testing.T, token string, payload []byte, key *ecdsa.PrivateKey) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	if payload != nil {
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	}
	input := parts[0] + "." + parts[1]
	if key == nil {
		return input + "." + parts[2] // the enclave's signature over other bytes
	}
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOIDCTokenAgainstAnIndependentValidator(t *testing.T) {
	is := newIssuerServer(t)
	e := newOIDCEnv(t, is.issuer)

	// Publish: the two files, written where the issuer serves them.
	out, stderr, exit := e.signerctlRun("oidc", "publish", "--out", is.dir, "--issuer", is.issuer)
	if exit != 0 {
		t.Fatalf("oidc publish: exit %d\n%s", exit, stderr)
	}
	var published struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		KeyID   string   `json:"kid"`
		Files   []string `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &published); err != nil {
		t.Fatalf("oidc publish printed %s: %v", out, err)
	}
	wantFiles := []string{filepath.Join(is.dir, ".well-known", "openid-configuration"), filepath.Join(is.dir, ".well-known", "jwks.json")}
	if published.Issuer != is.issuer || published.JWKSURI != is.issuer+"/.well-known/jwks.json" ||
		strings.Join(published.Files, ",") != strings.Join(wantFiles, ",") {
		t.Fatalf("oidc publish printed %s", out)
	}
	// Publishing for another issuer than the enclave's is refused.
	if _, stderr, exit := e.signerctlRun("oidc", "publish", "--out", t.TempDir(), "--issuer", "https://another.example"); exit != 1 ||
		!strings.Contains(stderr, "not \"https://another.example\"") {
		t.Fatalf("publish for another issuer: exit %d, %s", exit, stderr)
	}

	// The served files are the attested ones.
	if out, stderr, exit := e.signerctlRun("oidc", "check", "--issuer", is.issuer, "--ca", is.caFile); exit != 0 {
		t.Fatalf("oidc check of the published files: exit %d\n%s%s", exit, out, stderr)
	}

	// A token, as signerctl prints it, judged by jwx against the JWKS it
	// fetches from the issuer.
	tok := e.oidcToken(devpki.OIDCAudience)
	if tok.KeyID != published.KeyID {
		t.Fatalf("token under kid %s, the published signing key is %s", tok.KeyID, published.KeyID)
	}
	keys := is.validatorKeys(t)
	validate := func(token string, options ...jwt.ParseOption) (jwt.Token, error) {
		return jwt.Parse([]byte(token), append([]jwt.ParseOption{jwt.WithKeySet(keys), jwt.WithValidate(true)}, options...)...)
	}
	expect := []jwt.ParseOption{jwt.WithIssuer(is.issuer), jwt.WithAudience(devpki.OIDCAudience), jwt.WithSubject(oidcActor)}
	parsed, err := validate(tok.Token, expect...)
	if err != nil {
		t.Fatalf("jwx refused the enclave's token: %v", err)
	}
	if exp, ok := parsed.Expiration(); !ok || exp.Unix() != tok.Expires || time.Until(exp) > 5*time.Minute+time.Minute {
		t.Fatalf("exp %v (%v), printed %d", exp, ok, tok.Expires)
	}

	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.Token, ".")[1])
	otherActor := strings.Replace(string(claims), oidcActor, strings.Repeat("ab", 32), 1)
	afterExpiry := jwt.WithClock(jwt.ClockFunc(func() time.Time { return time.Unix(tok.Expires, 0).Add(time.Minute) }))
	otherToken := e.oidcToken(oidcOtherAudience).Token
	for _, tc := range []struct {
		name    string
		token   string
		options []jwt.ParseOption
		want    error
	}{
		{"bad_another_audience_expected", tok.Token, []jwt.ParseOption{jwt.WithIssuer(is.issuer), jwt.WithAudience(oidcOtherAudience), jwt.WithSubject(oidcActor)}, jwt.InvalidAudienceError()},
		{"bad_minted_for_another_audience", otherToken, expect, jwt.InvalidAudienceError()},
		{"bad_another_issuer_expected", tok.Token, []jwt.ParseOption{jwt.WithIssuer("https://another.example"), jwt.WithAudience(devpki.OIDCAudience)}, jwt.InvalidIssuerError()},
		{"bad_another_subject_expected", tok.Token, []jwt.ParseOption{jwt.WithIssuer(is.issuer), jwt.WithAudience(devpki.OIDCAudience), jwt.WithSubject(strings.Repeat("ab", 32))}, jwt.ValidateError()},
		{"bad_expired", tok.Token, append(expect[:len(expect):len(expect)], afterExpiry), jwt.TokenExpiredError()},
		{"bad_signed_by_another_key_under_the_kid", resignToken(t, tok.Token, nil, stranger), expect, jws.VerifyError()},
		{"bad_claims_changed_under_the_enclave_signature", resignToken(t, tok.Token, []byte(otherActor), nil), nil, jws.VerifyError()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := validate(tc.token, tc.options...); !errors.Is(err, tc.want) {
				t.Fatalf("jwx: %v, want %v", err, tc.want)
			}
		})
	}
	// The control: the same validator accepts the other audience's token
	// when that audience is expected, so the refusals above are the rules'.
	if _, err := validate(otherToken, jwt.WithIssuer(is.issuer), jwt.WithAudience(oidcOtherAudience), jwt.WithSubject(oidcActor)); err != nil {
		t.Fatalf("jwx refused the other audience's token for its audience: %v", err)
	}

	// Neither log holds the token.
	sig := tok.Token[strings.LastIndexByte(tok.Token, '.')+1:]
	for _, log := range []string{"enclave.log", "parent.log"} {
		if b, _ := os.ReadFile(filepath.Join(e.dir, log)); strings.Contains(string(b), sig) {
			t.Fatalf("%s holds the token", log)
		}
	}

	// One byte of the served JWKS changes: oidc check names it, and the
	// validator no longer finds the token's key.
	jwksPath := wantFiles[1]
	b, err := os.ReadFile(jwksPath)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), `"kid":"`) + len(`"kid":"`)
	b[i] ^= 1
	if err := os.WriteFile(jwksPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, exit = e.signerctlRun("oidc", "check", "--issuer", is.issuer, "--ca", is.caFile)
	if exit != 1 || !strings.Contains(out, published.JWKSURI+": ") || !strings.Contains(out, "keys[0].kid: served") ||
		strings.Contains(out, "openid-configuration") || !strings.Contains(stderr, "serves other files than the enclave attests") {
		t.Fatalf("oidc check after one byte changed: exit %d\n%s%s", exit, out, stderr)
	}
	if _, err := jwt.Parse([]byte(tok.Token), jwt.WithKeySet(is.validatorKeys(t)), jwt.WithValidate(true)); err == nil {
		t.Fatal("jwx accepted the token against a JWKS without its key")
	}
	// Without the issuer's CA, check cannot reach it and says so.
	if out, _, exit := e.signerctlRun("oidc", "check", "--issuer", is.issuer); exit != 1 || !strings.Contains(out, "certificate") {
		t.Fatalf("oidc check with the system roots: exit %d\n%s", exit, out)
	}
}

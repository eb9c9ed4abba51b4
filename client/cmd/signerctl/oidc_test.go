package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
)

// discovery is a consistent discovery answer for an issuer with n keys,
// the JWKS at jwksPath under it.
func discovery(t *testing.T, issuer, jwksPath string, n int) *api.OIDCDiscoveryResponse {
	t.Helper()
	var set jose.JSONWebKeySet
	for range n {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: base64.RawURLEncoding.EncodeToString(sum), Use: "sig", Algorithm: "ES256"})
	}
	jwks, _ := json.Marshal(set)
	jwksURI := issuer + "/" + jwksPath
	conf, _ := json.Marshal(map[string]any{"issuer": issuer, "jwks_uri": jwksURI, "id_token_signing_alg_values_supported": []string{"ES256"}})
	return &api.OIDCDiscoveryResponse{Issuer: issuer, Configuration: conf, JWKSURI: jwksURI, JWKS: jwks,
		KeyID: set.Keys[n-1].KeyID, Epoch: uint32(n)}
}

// TestOIDCPublishWritesTheAttestedBytes: the two files, byte for byte the
// enclave's, at their paths under the issuer, and nothing else.
func TestOIDCPublishWritesTheAttestedBytes(t *testing.T) {
	d := discovery(t, "https://issuer.example/oidc", "keys/v1/jwks.json", 2)
	pub, err := checkDiscovery(d, "https://issuer.example/oidc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for range 2 { // publishing again replaces the files
		files, err := writePublication(dir, pub)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(dir, ".well-known", "openid-configuration"), filepath.Join(dir, "keys", "v1", "jwks.json")}
		if strings.Join(files, ",") != strings.Join(want, ",") {
			t.Fatalf("wrote %q, want %q", files, want)
		}
		for i, data := range [][]byte{d.Configuration, d.JWKS} {
			got, err := os.ReadFile(want[i])
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: %q, %v; want the attested bytes", want[i], got, err)
			}
		}
	}
	var all []string
	filepath.WalkDir(dir, func(path string, e os.DirEntry, _ error) error {
		if !e.IsDir() {
			all = append(all, path)
		}
		return nil
	})
	if len(all) != 2 {
		t.Fatalf("files under the output: %q, want the two", all)
	}
}

// TestOIDCPublishRefuses: an answer the checker refuses, or another
// issuer than the operator's, writes nothing.
func TestOIDCPublishRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      func(t *testing.T) *api.OIDCDiscoveryResponse
		issuer string
		want   error
	}{
		{"bad_another_issuer", func(t *testing.T) *api.OIDCDiscoveryResponse {
			return discovery(t, "https://issuer.example/oidc", "jwks.json", 1)
		}, "https://issuer.example/other", nil},
		{"bad_jwks_uri_outside_the_issuer", func(t *testing.T) *api.OIDCDiscoveryResponse {
			d := discovery(t, "https://issuer.example/oidc", "jwks.json", 1)
			d.JWKSURI = "https://issuer.example/jwks.json"
			d.Configuration, _ = json.Marshal(map[string]any{"issuer": d.Issuer, "jwks_uri": d.JWKSURI})
			return d
		}, "", client.ErrOIDCJWKSURIOutside},
		{"bad_kid_not_the_thumbprint", func(t *testing.T) *api.OIDCDiscoveryResponse {
			d := discovery(t, "https://issuer.example/oidc", "jwks.json", 1)
			d.JWKS = bytes.Replace(d.JWKS, []byte(`"kid":"`), []byte(`"kid":"x`), 1)
			return d
		}, "", client.ErrOIDCKeyID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := checkDiscovery(tc.d(t), tc.issuer)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || pub != nil {
				t.Fatalf("got %+v, %v; want %v", pub, err, tc.want)
			}
		})
	}
}

// servedIssuer serves dir at srv.URL+"/oidc" over TLS, and returns the
// enclave's answer for that issuer, already published into dir, and the
// server's CA file.
func servedIssuer(t *testing.T, handler func(dir string) http.Handler) (pub *client.OIDCPublication, dir, caFile string) {
	t.Helper()
	dir = t.TempDir()
	var h http.Handler
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h = handler(dir)
	pub, err := checkDiscovery(discovery(t, srv.URL+"/oidc", ".well-known/jwks.json", 2), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writePublication(dir, pub); err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	return pub, dir, caFile
}

func fileServer(dir string) http.Handler {
	return http.StripPrefix("/oidc", http.FileServer(http.Dir(dir)))
}

// TestOIDCCheckComparesWhatIsServed: the published files pass; each change
// to what is served is named, by URL and, when both are JSON, by member.
func TestOIDCCheckComparesWhatIsServed(t *testing.T) {
	jwksFile := func(dir string) string { return filepath.Join(dir, ".well-known", "jwks.json") }
	confFile := func(dir string) string { return filepath.Join(dir, ".well-known", "openid-configuration") }
	for _, tc := range []struct {
		name    string
		handler func(dir string) http.Handler
		change  func(t *testing.T, dir string)
		noCA    bool
		want    []string // every one in some difference; none: no difference
	}{
		{name: "as_published", handler: fileServer},
		{name: "bad_one_byte_of_the_jwks", handler: fileServer, change: func(t *testing.T, dir string) {
			b, _ := os.ReadFile(jwksFile(dir))
			i := bytes.Index(b, []byte(`"kid":"`)) + len(`"kid":"`)
			b[i] ^= 1
			os.WriteFile(jwksFile(dir), b, 0o644)
		}, want: []string{"jwks.json: ", "first different at byte", "keys[0].kid: served"}},
		{name: "bad_another_key_added", handler: fileServer, change: func(t *testing.T, dir string) {
			var set map[string][]any
			b, _ := os.ReadFile(jwksFile(dir))
			json.Unmarshal(b, &set)
			set["keys"] = append(set["keys"], set["keys"][0])
			b, _ = json.Marshal(set)
			os.WriteFile(jwksFile(dir), b, 0o644)
		}, want: []string{"keys: 3 elements served, 2 attested"}},
		{name: "bad_configuration_member_changed_and_added", handler: fileServer, change: func(t *testing.T, dir string) {
			var conf map[string]any
			b, _ := os.ReadFile(confFile(dir))
			json.Unmarshal(b, &conf)
			conf["jwks_uri"] = "https://evil.example/jwks.json"
			conf["extra"] = true
			b, _ = json.Marshal(conf)
			os.WriteFile(confFile(dir), b, 0o644)
		}, want: []string{"openid-configuration: extra: served true, not attested", `jwks_uri: served "https://evil.example/jwks.json"`}},
		{name: "bad_same_json_written_otherwise", handler: fileServer, change: func(t *testing.T, dir string) {
			b, _ := os.ReadFile(confFile(dir))
			var buf bytes.Buffer
			json.Indent(&buf, b, "", "  ")
			os.WriteFile(confFile(dir), buf.Bytes(), 0o644)
		}, want: []string{"the same JSON, written otherwise"}},
		{name: "bad_not_json", handler: fileServer, change: func(t *testing.T, dir string) {
			os.WriteFile(jwksFile(dir), []byte("<html>"), 0o644)
		}, want: []string{"the served file is not JSON"}},
		{name: "bad_missing", handler: fileServer, change: func(t *testing.T, dir string) {
			os.Remove(confFile(dir))
		}, want: []string{"openid-configuration: served with status 404"}},
		{name: "bad_redirect_not_followed", handler: func(dir string) http.Handler {
			return http.RedirectHandler("https://evil.example/", http.StatusFound)
		}, want: []string{"openid-configuration: served with status 302", "jwks.json: served with status 302"}},
		{name: "bad_untrusted_certificate", handler: fileServer, noCA: true, want: []string{"certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, dir, caFile := servedIssuer(t, tc.handler)
			if tc.change != nil {
				tc.change(t, dir)
			}
			if tc.noCA {
				caFile = ""
			}
			hc, err := servedClient(caFile)
			if err != nil {
				t.Fatal(err)
			}
			diffs := compareServed(context.Background(), hc, pub)
			if len(tc.want) == 0 {
				if len(diffs) != 0 {
					t.Fatalf("differences %q, want none", diffs)
				}
				return
			}
			all := strings.Join(diffs, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Fatalf("differences\n%s\nwant one with %q", all, w)
				}
			}
		})
	}
}

// TestOIDCCommandLines: the oidc commands' usage errors, exit 2 and one
// line, before anything is called.
func TestOIDCCommandLines(t *testing.T) {
	flags := devLayout(t)
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"bad_publish_without_out", []string{"oidc", "publish"}, "--out is required"},
		{"bad_check_without_issuer", []string{"oidc", "check"}, "--issuer is required"},
		{"bad_check_ca_missing", []string{"oidc", "check", "--issuer", "https://i.example", "--ca", "/nonexistent/ca.pem"}, "--ca: "},
		{"bad_token_without_actor", []string{"oidc", "token", "--audience", "sts.amazonaws.com"}, "--actor is required"},
		{"bad_token_without_audience", []string{"oidc", "token", "--actor", "ab"}, "--audience is required"},
		{"bad_token_ttl_fraction", []string{"oidc", "token", "--actor", "ab", "--audience", "a", "--ttl", "1500ms"}, "--ttl 1.5s"},
		{"bad_publish_without_client_flags", []string{"oidc", "publish", "--out", "x"}, "--cert, --key, --server-ca and --signer-id are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, nil, &stdout, &stderr)
			if code != 2 || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line with %q", code, stdout.String(), stderr.String(), tc.stderr)
			}
		})
	}
	t.Run("unreachable_signer_exits_1", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"oidc", "token", "--actor", strings.Repeat("ab", 32), "--audience", "a", "--parent", "https://" + closedPort(t)}, flags...)
		if code := run(args, nil, &stdout, &stderr); code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "connection refused") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	})
}

// FuzzCompareFile: whatever an issuer serves, the comparison names no
// difference exactly when the bytes are the attested ones, and never
// panics.
func FuzzCompareFile(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kid":"a"}]}`), []byte(`{"keys":[{"kid":"b"}]}`))
	f.Add([]byte(`{"a":1,"b":[1,2]}`), []byte(`{"b":[1],"a":"1"}`))
	f.Add([]byte(`{"a":1}`), []byte(`{"a":1}`))
	f.Add([]byte(`[[[[{}]]]]`), []byte(`not json`))
	f.Fuzz(func(t *testing.T, served, attested []byte) {
		diffs := compareFile("f", served, attested)
		if (len(diffs) == 0) != bytes.Equal(served, attested) {
			t.Fatalf("served %q, attested %q: differences %q", served, attested, diffs)
		}
	})
}

// What the issuer host serves is quoted where it is not plain: a member
// name cannot write control characters to the operator's terminal.
func TestCompareFileQuotesServedNames(t *testing.T) {
	served := []byte(`{"keys":[],"\u001b[1A\u001b[2K\rok":1}`)
	diffs := compareFile("https://i/jwks", served, []byte(`{"keys":[]}`))
	if len(diffs) == 0 {
		t.Fatal("no difference reported")
	}
	for _, d := range diffs {
		if strings.ContainsRune(d, 0x1b) || strings.ContainsRune(d, '\r') {
			t.Fatalf("raw control character: %q", d)
		}
	}
}

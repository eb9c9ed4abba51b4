package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/server"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

const omni = "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"

// simOptions are the simulated NSM's options, and simNSM what these
// tests use of it; openSimulator opens one, or skips the test when the
// simulator is not compiled in (sim_nsmsim_test.go, sim_other_test.go).
type simOptions struct {
	StateDir, Binary string
	Debug            bool
	Clock            func() time.Time
}

type simNSM interface{ nsm.Module }

type fixture struct {
	srv   *server.Server
	creds envelope.Credentials
	chain [][]byte
}

func newFixture(tb testing.TB) *fixture { return newFixtureWith(tb, nil) }

// newFixtureWith is newFixture with the development configuration changed
// by edit first (nil: unchanged).
func newFixtureWith(tb testing.TB, edit func(m map[string]any)) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	if err := devpki.Generate(dir, time.Now()); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, devpki.EnclaveJSON)
	if edit != nil {
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			tb.Fatal(err)
		}
		edit(m)
		if b, err = json.Marshal(m); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	exe, _ := os.Executable()
	sim := openSimulator(tb, simOptions{StateDir: filepath.Join(dir, "nsm"), Binary: exe, Clock: time.Now})
	keys := keyring.New()
	s, _ := keyring.NewSecret(make([]byte, 32))
	keys.Add(s)
	srv, err := server.New(server.Options{Config: cfg, NSM: sim, Keys: keys, Clock: time.Now})
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, devpki.ClientCert("broker")), filepath.Join(dir, devpki.ClientKey("broker")))
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{srv: srv, creds: envelope.Credentials{Signer: cert.PrivateKey.(*ecdsa.PrivateKey), Leaf: cert.Certificate[0]}, chain: cert.Certificate}
}

func (f *fixture) request(tb testing.TB, method string, params any) []byte {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	b, err := envelope.SignRequest(f.creds, envelope.Outgoing{Method: method, Params: params, Audience: devpki.SignerID, Enclave: f.srv.KeyID(), IAT: time.Now(), Nonce: nonce})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestHandleAnswersSignedAndReady(t *testing.T) {
	f := newFixture(t)
	r := f.srv.Handle(context.Background(), &channel.Call{Route: "ready"})
	var ready api.Readiness
	if err := json.Unmarshal(r.Body, &ready); err != nil || !ready.Ready || r.Status != 200 {
		t.Fatalf("ready: %d %s", r.Status, r.Body)
	}
	body := f.request(t, "dev/sign-message", map[string]string{"omni_account": omni, "message_hex": "00"})
	r = f.srv.Handle(context.Background(), &channel.Call{Route: "dev/sign-message", Body: body, Chain: f.chain})
	if r.Status != 200 {
		t.Fatalf("sign-message: %d %s", r.Status, r.Body)
	}
	if r := f.srv.Handle(context.Background(), &channel.Call{Route: "attestation", Body: []byte("short")}); r.Status != 400 {
		t.Fatalf("short attestation nonce: %d", r.Status)
	}
}

// TestOIDCMethodsNeedTheOIDCMember: with the development configuration's
// oidc member the broker gets the discovery document, signed; without it
// the same role-allowed call is unknown_method.
func TestOIDCMethodsNeedTheOIDCMember(t *testing.T) {
	for name, tc := range map[string]struct {
		edit   func(m map[string]any)
		status int
		code   api.Code
	}{
		"with_oidc":        {nil, 200, ""},
		"bad_without_oidc": {func(m map[string]any) { delete(m, "oidc") }, 404, api.CodeUnknownMethod},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixtureWith(t, tc.edit)
			body := f.request(t, api.OIDCDiscovery.Route, map[string]any{})
			r := f.srv.Handle(context.Background(), &channel.Call{Route: api.OIDCDiscovery.Route, Body: body, Chain: f.chain})
			resp, err := envelope.VerifyResponse(r.Body, body, func(string) *ecdsa.PublicKey { return f.srv.TestOnlyResponseKey() })
			if err != nil || r.Status != tc.status {
				t.Fatalf("%s: %d, %v", api.OIDCDiscovery.Route, r.Status, err)
			}
			if tc.code != "" {
				if resp.Err == nil || resp.Err.Code != tc.code {
					t.Fatalf("answer %+v, want %s", resp, tc.code)
				}
				return
			}
			var d api.OIDCDiscoveryResponse
			if err := json.Unmarshal(resp.Result, &d); err != nil || d.Issuer != devpki.OIDCIssuer || d.Epoch != 1 || d.KeyID == "" {
				t.Fatalf("discovery %s: %v", resp.Result, err)
			}
		})
	}
}

// BenchmarkHandleSignMessage is the enclave's whole request path in process:
// envelope verification, authorization, the method and the response
// signature. Requests are signed outside the timer.
func BenchmarkHandleSignMessage(b *testing.B) {
	f := newFixture(b)
	params := map[string]string{"omni_account": omni, "message_hex": "0x68656c6c6f"}
	const batch = 256
	reqs := make([][]byte, 0, batch)
	b.ReportAllocs()
	for b.Loop() {
		if len(reqs) == 0 {
			b.StopTimer()
			for range batch {
				reqs = append(reqs, f.request(b, "dev/sign-message", params))
			}
			b.StartTimer()
		}
		body := reqs[len(reqs)-1]
		reqs = reqs[:len(reqs)-1]
		r := f.srv.Handle(context.Background(), &channel.Call{Route: "dev/sign-message", Body: body, Chain: f.chain})
		if r.Status != 200 {
			b.Fatalf("%d %s", r.Status, r.Body)
		}
	}
}

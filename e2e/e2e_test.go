package e2e

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
)

const omniHex = "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"

// devSecret reads the development master secret the enclave created.
func (e *env) devSecret() []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "nsm", "dev-master-secret.hex"))
	if err != nil {
		e.t.Fatal(err)
	}
	return unhex(e.t, strings.TrimSpace(string(b)))
}

// designWalletKey recomputes DESIGN §5.1 independently of the keyring: HKDF
// extract and expand spelled out, retry byte appended while the scalar is
// invalid.
func designWalletKey(t *testing.T, k3 []byte, epoch byte, omni []byte) []byte {
	t.Helper()
	prk, err := hkdf.Extract(sha256.New, k3, []byte("agentkeys-signer-v0"))
	if err != nil {
		t.Fatal(err)
	}
	info := append(append([]byte{epoch}, "agentkeys-evm-wallet"...), omni...)
	for r := 0; r < 256; r++ {
		in := info
		if r > 0 {
			in = append(append([]byte{}, info...), byte(r))
		}
		okm, err := hkdf.Expand(sha256.New, prk, string(in), 32)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.ToECDSA(okm); err == nil {
			return okm
		}
	}
	t.Fatal("no valid scalar")
	return nil
}

func TestDerivedAddressMatchesDesign(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	got, err := c.DeriveAddress(ctx(t), omniHex, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.ToECDSA(designWalletKey(t, e.devSecret(), 1, unhex(t, omniHex)))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ToLower(crypto.PubkeyToAddress(key.PublicKey).Hex())
	if got.Address != want || got.Epoch != 1 {
		t.Fatalf("derive-address = %s epoch %d, DESIGN §5.1 gives %s epoch 1", got.Address, got.Epoch, want)
	}
	if got.PublicKey != "0x"+bytesHex(crypto.FromECDSAPub(&key.PublicKey)) {
		t.Fatalf("public key %s differs", got.PublicKey)
	}
	// Upper-case omni input names the same identity.
	dev, err := c.DevDeriveAddress(ctx(t), strings.ToUpper(omniHex))
	if err != nil {
		t.Fatal(err)
	}
	if dev.Address != want || dev.KeyVersion != 1 {
		t.Fatalf("dev/derive-address = %+v, want %s", dev, want)
	}
}

func TestSignMessageRecoversAndIsDeterministic(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	msg := []byte("hello from the end-to-end test")
	got, err := c.DevSignMessage(ctx(t), omniHex, "0x"+bytesHex(msg))
	if err != nil {
		t.Fatal(err)
	}
	sig := unhex(t, got.Signature)
	hash := crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n30"), msg)
	pub, err := crypto.SigToPub(hash, sig)
	if err != nil {
		t.Fatal(err)
	}
	if a := strings.ToLower(crypto.PubkeyToAddress(*pub).Hex()); a != got.Address {
		t.Fatalf("signature recovers to %s, response says %s", a, got.Address)
	}
	key, _ := crypto.ToECDSA(designWalletKey(t, e.devSecret(), 1, unhex(t, omniHex)))
	want, err := crypto.Sign(hash, key) // RFC 6979, low-S, v in {0,1}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig, want) {
		t.Fatalf("signature %x, deterministic RFC 6979 signature %x", sig, want)
	}
	if sig[64] > 1 {
		t.Fatalf("v = %d, want 0 or 1", sig[64])
	}
}

// TestSignedAheadRequestsAreCheckedWhenOpened is Call in three steps
// (signer-bench signs ahead and verifies later): an answer is accepted
// only for the request it answers, and a request sent twice is refused.
func TestSignedAheadRequestsAreCheckedWhenOpened(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	var reqs [2]*client.Request
	var answers [2]*client.Answer
	for i := range reqs {
		var err error
		reqs[i], err = c.Prepare(ctx(t), "v1/derive-address", map[string]string{"operator_omni": omniHex})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range reqs {
		var err error
		if answers[i], err = c.Send(ctx(t), reqs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var got api.DeriveAddressResponse
	if err := c.Open(ctx(t), reqs[1], answers[1], &got); err != nil || got.Address == "" {
		t.Fatalf("Open: %v, result %+v", err, got)
	}
	if err := c.Open(ctx(t), reqs[0], answers[1], nil); !errors.Is(err, client.ErrResponse) {
		t.Fatalf("the answer to another request: %v, want %v", err, client.ErrResponse)
	}
	again, err := c.Send(ctx(t), reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	var refusal *api.Error
	if err := c.Open(ctx(t), reqs[0], again, nil); !errors.As(err, &refusal) || refusal.Code != api.CodeReplayed {
		t.Fatalf("a request sent twice: %v, want a signed refusal %s", err, api.CodeReplayed)
	}
	if _, err := c.Send(ctx(t), &client.Request{}); !errors.Is(err, client.ErrNoRequest) {
		t.Fatalf("Send of a request not prepared: %v, want %v", err, client.ErrNoRequest)
	}
	if err := c.Open(ctx(t), reqs[0], nil, nil); !errors.Is(err, client.ErrNoRequest) {
		t.Fatalf("Open without an answer: %v, want %v", err, client.ErrNoRequest)
	}
}

func bytesHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func TestRefusalsAreSignedAndTyped(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		role   string
		method string
		params any
		want   api.Code
	}{
		{"bad_omni_with_0x_prefix", "broker", "dev/derive-address", map[string]string{"omni_account": "0x" + omniHex[2:]}, api.CodeInvalidOmni},
		{"bad_omni_short", "broker", "v1/derive-address", map[string]string{"operator_omni": "abcd"}, api.CodeInvalidOmni},
		{"bad_message_hex", "broker", "dev/sign-message", map[string]string{"omni_account": omniHex, "message_hex": "0xzz"}, api.CodeInvalidMessageHex},
		{"bad_unknown_param", "broker", "v1/derive-address", map[string]string{"operator_omni": omniHex, "extra": "1"}, api.CodeBadRequest},
		{"bad_unknown_epoch", "broker", "v1/derive-address", map[string]any{"operator_omni": omniHex, "k3_epoch": 7}, api.CodeUnknownEpoch},
		{"bad_role_worker_on_dev", "worker", "dev/sign-message", map[string]string{"omni_account": omniHex, "message_hex": "00"}, api.CodeUnauthorized},
		{"bad_role_admin_on_v1", "admin", "v1/derive-address", map[string]string{"operator_omni": omniHex}, api.CodeUnauthorized},
		{"bad_unknown_method", "broker", "v1/no-such-method", map[string]string{}, api.CodeUnknownMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.client(tt.role).Call(ctx(t), tt.method, tt.params, nil)
			var refusal *api.Error
			if !errors.As(err, &refusal) || refusal.Code != tt.want {
				t.Fatalf("Call: %v, want a signed refusal %s", err, tt.want)
			}
		})
	}
}

func TestTLSRequiresCallerCertificate(t *testing.T) {
	e := newEnv(t)
	other := newForeignCaller(t, "broker")
	for name, cfg := range map[string]*tls.Config{
		"no_client_certificate":     {MinVersion: tls.VersionTLS13, RootCAs: e.serverPool()},
		"certificate_from_other_ca": {MinVersion: tls.VersionTLS13, RootCAs: e.serverPool(), Certificates: []tls.Certificate{other.tls}},
		"tls_1_2_only":              {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, RootCAs: e.serverPool(), Certificates: []tls.Certificate{e.tlsCert("broker")}},
	} {
		t.Run(name, func(t *testing.T) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := c.Get(e.parent + "/healthz")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("handshake succeeded: %d", resp.StatusCode)
			}
		})
	}
	resp, err := e.httpClient("broker").Get(e.parent + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestProductionEnclaveRefusesToStartWithoutNSM(t *testing.T) {
	if _, err := os.Stat("/dev/nsm"); err == nil {
		t.Skip("/dev/nsm exists here")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	cfg := writeDevConfig(t, dir)
	// The development configuration seals under a local key, which a
	// production build refuses before anything else.
	cmd := exec.Command(filepath.Join(binDir, "enclave-production"), "--config", cfg, "--listen", "unix://"+filepath.Join(dir, "s.sock"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `sealing.kind \"dev\" exists only in development builds`) {
		t.Fatalf("production enclave with development sealing: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte(`"kind": "dev"`), []byte(`"kind": "none"`), 1), 0o644)
	cmd = exec.Command(filepath.Join(binDir, "enclave-production"), "--config", cfg, "--listen", "unix://"+filepath.Join(dir, "s.sock"))
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatal("production enclave started without /dev/nsm")
	}
	if !strings.Contains(string(out), "/dev/nsm") {
		t.Fatalf("error does not name /dev/nsm: %s", out)
	}
}

func TestNoKeysFailsClosed(t *testing.T) {
	e := newEnv(t, "--no-keys")
	resp, err := e.httpClient("broker").Get(e.parent + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), `"ready":false`) {
		t.Fatalf("readyz %d %s, want 503 not ready", resp.StatusCode, body)
	}
	_, err = e.client("broker").DeriveAddress(ctx(t), omniHex, 0)
	var refusal *api.Error
	if !errors.As(err, &refusal) || refusal.Code != api.CodeSignerDisabled {
		t.Fatalf("derive-address without keys: %v, want signer_disabled", err)
	}
}

func TestEnclaveRestartIsSurvivedWithReattestation(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	before, err := c.Attest(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	e.enclave.kill()
	start := time.Now()
	_, err = c.DeriveAddress(ctx(t), omniHex, 0)
	var pe *client.ParentError
	if !errors.As(err, &pe) || pe.Status != 503 {
		t.Fatalf("with the enclave down: %v, want a 503 from the parent", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the parent took %s to answer 503", d)
	}
	e.startEnclave()
	e.waitConnected()
	got, err := c.DeriveAddress(ctx(t), omniHex, 0)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	after, err := c.Attest(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if after.KeyID == before.KeyID {
		t.Fatal("the restarted enclave kept its per-boot key")
	}
	if got.Address == "" {
		t.Fatal("empty address")
	}
}

func TestParentLimits(t *testing.T) {
	e := newEnv(t)
	c := e.httpClient("broker")
	resp, err := c.Post(e.parent+"/v1/derive-address", "application/jose", bytes.NewReader(make([]byte, 200<<10)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body: %d, want 413", resp.StatusCode)
	}
	resp, err = c.Get(e.parent + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown route: %d, want 404", resp.StatusCode)
	}
	resp, err = c.Post(e.parent+"/v1/derive-address", "application/jose", strings.NewReader("not a jws"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/jose" {
		t.Fatalf("garbage envelope: %d %s %q, want a signed 400", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
)

// newSealedEnv starts a stack whose parent keeps a state store and whose
// enclave seals its keyring there. Stacks created with the same dir share
// the development PKI, root and sealing key (as replicas share the AWS root
// and a KMS key), each with its own sockets, logs and state directory.
func newSealedEnv(t *testing.T, dir, name string, enclaveArgs ...string) *env {
	t.Helper()
	return newSealedEnvOf(t, dir, name, "", enclaveArgs...)
}

// newSealedEnvOf is newSealedEnv running the enclave binary bin of binDir
// ("" for the development enclave).
func newSealedEnvOf(t *testing.T, dir, name, bin string, enclaveArgs ...string) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, "pki", devpki.EnclaveJSON)); err != nil {
		if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	hostSock := filepath.Join(dir, name+"host.sock")
	e := &env{t: t, dir: dir, name: name, sock: filepath.Join(dir, name+"enclave.sock"), bin: bin,
		enclaveExtra: []string{"--host", "unix://" + hostSock},
		parentExtra: []string{"--state-dir", filepath.Join(dir, name+"state"), "--host-listen", "unix://" + hostSock,
			"--imds", "off"},
	}
	// The parent first, so the enclave finds its host service at boot.
	e.launchParent("unix://" + e.sock)
	e.startEnclave(enclaveArgs...)
	e.waitConnected()
	return e
}

func (e *env) stateDir() string { return filepath.Join(e.dir, e.name+"state") }

// readiness polls the parent's /readyz until cond holds for its body.
func (e *env) readiness(cond func(ready bool, reason string) bool, timeout time.Duration) (bool, string) {
	e.t.Helper()
	c := e.httpClient("broker")
	deadline := time.Now().Add(timeout)
	var last struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	}
	for time.Now().Before(deadline) {
		resp, err := c.Get(e.parent + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if json.Unmarshal(b, &last) == nil && cond(last.Ready, last.Reason) {
				return last.Ready, last.Reason
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("readiness never matched; last %+v", last)
	return false, ""
}

func (e *env) waitReady() {
	e.t.Helper()
	e.readiness(func(ready bool, _ string) bool { return ready }, 30*time.Second)
}

// keyView is what the signer answers for an identity under every epoch:
// the wallet address and the credential KEK.
type keyView map[uint32][2]string

var keyOmnis = []string{omniHex, strings.Repeat("ab", 32), strings.Repeat("01", 32)}

func (e *env) keyView(c *client.Client, epochs uint32) map[string]keyView {
	e.t.Helper()
	out := map[string]keyView{}
	for _, o := range keyOmnis {
		v := keyView{}
		for ep := uint32(1); ep <= epochs; ep++ {
			a, err := c.DeriveAddress(ctx(e.t), o, ep)
			if err != nil {
				e.t.Fatalf("derive-address %s epoch %d: %v", o[:8], ep, err)
			}
			kek, err := c.DeriveCredentialKEK(ctx(e.t), o, ep)
			if err != nil {
				e.t.Fatalf("derive-cred-kek %s epoch %d: %v", o[:8], ep, err)
			}
			v[ep] = [2]string{a.Address, hex.EncodeToString(kek)}
		}
		out[o] = v
	}
	return out
}

func sameView(t *testing.T, what string, got, want map[string]keyView) {
	t.Helper()
	for o, v := range want {
		for ep, w := range v {
			if got[o][ep] != w {
				t.Fatalf("%s: omni %s epoch %d answers %v, before %v", what, o[:8], ep, got[o][ep], w)
			}
		}
	}
}

// collectKEKs returns the KEKs of a view, as secrets the suite must never
// find written anywhere.
func collectKEKs(views ...map[string]keyView) [][]byte {
	var out [][]byte
	for _, view := range views {
		for _, v := range view {
			for _, p := range v {
				b, _ := hex.DecodeString(p[1])
				out = append(out, b)
			}
		}
	}
	return out
}

func walletAddress(t *testing.T, secret []byte, epoch byte, omni string) string {
	t.Helper()
	key, err := crypto.ToECDSA(designWalletKey(t, secret, epoch, unhex(t, omni)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(crypto.PubkeyToAddress(key.PublicKey).Hex())
}

func code(err error) api.Code {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// An enclave SIGKILLed under load and started again answers the same
// addresses and KEKs for every epoch, from its sealed state alone.
func TestKeysSurviveKillUnderLoad(t *testing.T) {
	e := newSealedEnv(t, "", "")
	admin := e.client("admin")
	for range 2 {
		if _, err := admin.RotateKeys(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	broker := e.client("broker")
	before := e.keyView(broker, 3)
	if got, want := before[omniHex][1][0], walletAddress(t, e.devSecret(), 1, omniHex); got != want {
		t.Fatalf("epoch 1 address %s, DESIGN §5.1 gives %s", got, want)
	}

	var ok, failed atomic.Int64
	stop := load(8, func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := broker.DevSignMessage(c, omniHex, "0x68656c6c6f")
		cancel()
		if err != nil {
			failed.Add(1)
			time.Sleep(20 * time.Millisecond)
		} else {
			ok.Add(1)
		}
	})
	time.Sleep(300 * time.Millisecond)
	e.enclave.kill()
	e.startEnclave()
	e.waitReady()
	time.Sleep(300 * time.Millisecond)
	stop()
	if ok.Load() == 0 {
		t.Fatal("no request succeeded under load")
	}
	after := e.keyView(broker, 3)
	sameView(t, "after SIGKILL and restart", after, before)
	st, err := admin.KeyStatus(ctx(t))
	if err != nil || st.Epoch != 3 || st.Generation != 3 || st.Sealer != "dev" {
		t.Fatalf("status after restart: %+v, %v", st, err)
	}
	// The current epoch is attested in user_data.
	if a, err := broker.Attest(ctx(t)); err != nil || a.UserData.Epoch != 3 {
		t.Fatalf("user_data after restart: %+v, %v", a, err)
	}
	t.Logf("load: %d ok, %d failed around the restart", ok.Load(), failed.Load())
	e.assertNoSecrets(append(collectKEKs(before), e.devSecret()))
}

// signerctl keys import encrypts a master secret to the attested enclave;
// the addresses are DESIGN §5.1's for that secret, and survive a restart.
func TestKeysImportWithSignerctl(t *testing.T) {
	e := newSealedEnv(t, "", "", "--no-keys")
	if ready, reason := e.readiness(func(bool, string) bool { return true }, 10*time.Second); ready || !strings.Contains(reason, "import") {
		t.Fatalf("before import: ready=%v reason=%q", ready, reason)
	}
	secret := bytes.Repeat([]byte{0x5a}, 31)
	secret = append(secret, 0x01)
	secretFile := filepath.Join(t.TempDir(), "k3.hex")
	os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)+"\n"), 0o600)
	signerctl := func(args ...string) (string, error) {
		cmd := execSignerctl(append(args, "--dev", e.dir, "--parent", e.parent)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := signerctl("keys", "import", "--secret-file", secretFile)
	if err != nil {
		t.Fatalf("keys import: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"k3_epoch": 1`) {
		t.Fatalf("keys import printed %s", out)
	}
	e.waitReady()
	broker := e.client("broker")
	view := e.keyView(broker, 1)
	for _, o := range keyOmnis {
		if got, want := view[o][1][0], walletAddress(t, secret, 1, o); got != want {
			t.Fatalf("imported secret: %s derives %s, DESIGN §5.1 gives %s", o[:8], got, want)
		}
	}
	// A second import is refused, and says why.
	out, err = signerctl("keys", "import", "--secret-file", secretFile)
	if err == nil || !strings.Contains(out, "epoch 1") {
		t.Fatalf("second import: %v\n%s", err, out)
	}
	// A broker may not import.
	if _, err := broker.ImportSecret(ctx(t), secret); err == nil {
		t.Fatal("a broker imported")
	}
	e.enclave.kill()
	e.startEnclave("--no-keys")
	e.waitReady()
	sameView(t, "after restart", e.keyView(e.client("broker"), 1), view)
	// An enclave that restarted over the stored keyring refuses an import
	// even of the same secret.
	if _, err := e.client("admin").ImportSecret(ctx(t), secret); err == nil {
		t.Fatal("import over a sealed keyring succeeded")
	}
	e.assertNoSecrets(append(collectKEKs(view), secret), secretFile)
}

// A fresh enclave copies the keyring from a live one through their parents;
// both check each other's attestation. Different PCRs, a debug enclave and
// an older keyring are refused.
func TestKeysPeerCopy(t *testing.T) {
	dir := t.TempDir()
	a := newSealedEnv(t, dir, "a-")
	if _, err := a.client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	want := a.keyView(a.client("broker"), 2)

	b := newSealedEnv(t, dir, "b-", "--no-keys")
	// The first copy with the command line: b with the admin certificate,
	// a (--from-*) with the peer certificate.
	out, err := execSignerctl("keys", "sync", "--dev", dir, "--parent", b.parent,
		"--from-dev", dir, "--from-parent", a.parent).CombinedOutput()
	if err != nil {
		t.Fatalf("keys sync: %v\n%s", err, out)
	}
	var res struct {
		Epoch      uint32 `json:"k3_epoch"`
		Generation uint64 `json:"generation"`
	}
	if json.Unmarshal(out, &res) != nil || res.Epoch != 2 || res.Generation != 2 {
		t.Fatalf("keys sync printed %s", out)
	}
	b.waitReady()
	sameView(t, "the copy", b.keyView(b.client("broker"), 2), want)

	// The copy is sealed in b's own store: b restarts without a.
	a.enclave.stop()
	b.enclave.kill()
	b.startEnclave("--no-keys")
	b.waitReady()
	sameView(t, "the copy after restart", b.keyView(b.client("broker"), 2), want)
	a.startEnclave()
	a.waitReady()

	// A replayed peer message — the same export delivered twice, each time
	// in a fresh, validly signed request — is refused the second time.
	peerA, adminB := a.client("peer"), b.client("admin")
	var ch api.PeerChallengeResponse
	if err := peerA.Call(ctx(t), api.PeerChallenge.Route, struct{}{}, &ch); err != nil {
		t.Fatal(err)
	}
	var offer api.PeerOfferResponse
	if err := adminB.Call(ctx(t), api.PeerOffer.Route, api.PeerOfferRequest(ch), &offer); err != nil {
		t.Fatal(err)
	}
	var exp api.PeerExportResponse
	if err := peerA.Call(ctx(t), api.PeerExport.Route, api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce}, &exp); err != nil {
		t.Fatal(err)
	}
	imp := api.PeerImportRequest{Nonce: offer.Nonce, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature}
	var again api.KeyringChange
	if err := adminB.Call(ctx(t), api.PeerImport.Route, imp, &again); err != nil || !again.Unchanged {
		t.Fatalf("first delivery: %+v, %v", again, err)
	}
	if err := adminB.Call(ctx(t), api.PeerImport.Route, imp, nil); code(err) != api.CodeReplayed {
		t.Fatalf("replayed peer-import: %v", err)
	}
	if err := peerA.Call(ctx(t), api.PeerExport.Route, api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce}, nil); code(err) != api.CodeReplayed {
		t.Fatalf("replayed peer-export: %v", err)
	}

	// A rotation on b, then a copy from a (older) is a rollback.
	if _, err := b.client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CopyKeyring(ctx(t), a.client("peer"), b.client("admin")); code(err) != api.CodeRollback {
		t.Fatalf("copy of an older keyring: %v", err)
	}
	if st, _ := b.client("admin").KeyStatus(ctx(t)); st == nil || st.Epoch != 3 {
		t.Fatalf("rollback changed b: %+v", st)
	}

	// Another image (other PCRs) is refused by the sender.
	other := filepath.Join(dir, "other-image")
	os.WriteFile(other, []byte("another enclave image"), 0o644)
	c := newSealedEnv(t, dir, "c-", "--no-keys", "--sim-image", other)
	if _, err := client.CopyKeyring(ctx(t), a.client("peer"), c.client("admin")); code(err) != api.CodePeerRefused {
		t.Fatalf("copy to other PCRs: %v", err)
	}
	// A debug enclave is refused too.
	d := newSealedEnv(t, dir, "d-", "--no-keys", "--debug")
	debugAdmin := d.client("admin", func(cfg *client.Config) { cfg.Policy.AllowDebug = true })
	if _, err := client.CopyKeyring(ctx(t), a.client("peer"), debugAdmin); code(err) != api.CodePeerRefused {
		t.Fatalf("copy to a debug enclave: %v", err)
	}
	for _, x := range []*env{c, d} {
		if ready, _ := x.readiness(func(bool, string) bool { return true }, 5*time.Second); ready {
			t.Fatalf("%s received keys", x.name)
		}
	}
	// A broker cannot start a copy.
	if _, err := client.CopyKeyring(ctx(t), a.client("broker"), b.client("admin")); code(err) != api.CodeUnauthorized {
		t.Fatalf("copy started by a broker: %v", err)
	}
	a.assertNoSecrets(append(collectKEKs(want), a.devSecret()))
}

// A corrupt newest sealed file: the enclave falls back to the previous
// sequence, logs why, and keeps the bad file for inspection.
func TestKeysCorruptSealedFileFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"flipped", func(b []byte) []byte { b[len(b)-3] ^= 0x10; return b }},
		// The same header, its first two keys swapped: what a parent that
		// rewrites stored state without the key can make. It never
		// opens (the header is the ciphertext's associated data), and
		// since ec5bb78 it is not even read as a header.
		{"header_reencoded", reencodeHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSealedEnv(t, "", "")
			admin := e.client("admin")
			v1 := e.keyView(e.client("broker"), 1)
			if _, err := admin.RotateKeys(ctx(t)); err != nil {
				t.Fatal(err)
			}
			e.enclave.stop()
			newest := filepath.Join(e.stateDir(), "keyring-00000000000000000002.sealed")
			b, err := os.ReadFile(newest)
			if err != nil {
				t.Fatal(err)
			}
			bad := tc.corrupt(b)
			os.WriteFile(newest, bad, 0o600)
			e.startEnclave()
			e.waitReady()
			e.enclave.waitLine(t, "sealed keyring unusable", 5*time.Second)
			st, err := e.client("admin").KeyStatus(ctx(t))
			if err != nil || st.Epoch != 1 || st.Sequence != 1 {
				t.Fatalf("status after fallback: %+v, %v", st, err)
			}
			sameView(t, "after fallback", e.keyView(e.client("broker"), 1), v1)
			if kept, _ := os.ReadFile(newest); !bytes.Equal(kept, bad) {
				t.Fatal("the bad file was not kept for inspection")
			}
			// signerctl keys inspect reads the headers without opening.
			out, err := execSignerctl("keys", "inspect", filepath.Join(e.stateDir(), "keyring-00000000000000000001.sealed")).CombinedOutput()
			if err != nil || !strings.Contains(string(out), `"generation": 1`) || !strings.Contains(string(out), `"epochs": 1`) {
				t.Fatalf("inspect of sequence 1: %v\n%s", err, out)
			}
			if tc.name == "truncated" || tc.name == "header_reencoded" {
				if out, err := execSignerctl("keys", "inspect", newest).CombinedOutput(); err == nil || !strings.Contains(string(out), "malformed") {
					t.Fatalf("inspect of the %s file: %v\n%s", tc.name, err, out)
				}
			}
			r, err := e.client("admin").RotateKeys(ctx(t))
			if err != nil || r.Sequence != 3 {
				t.Fatalf("rotation after fallback: %+v, %v", r, err)
			}
		})
	}
}

// A state store that cannot write refuses the rotation; the keyring and the
// stored state stay as they were.
func TestKeysRotationRefusedWhenStoreCannotWrite(t *testing.T) {
	e := newSealedEnv(t, "", "")
	admin := e.client("admin")
	dir := e.stateDir()
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dir, []byte("not a directory"), 0o600)
	_, err := admin.RotateKeys(ctx(t))
	if code(err) != api.CodeStateUnavailable {
		t.Fatalf("rotation with an unwritable store: %v", err)
	}
	st, err := admin.KeyStatus(ctx(t))
	if err != nil || st.Epoch != 1 || st.Generation != 1 {
		t.Fatalf("status after refused rotation: %+v, %v", st, err)
	}
	if _, err := e.client("broker").DeriveAddress(ctx(t), omniHex, 2); code(err) != api.CodeUnknownEpoch {
		t.Fatalf("epoch 2 after refused rotation: %v", err)
	}
	os.Remove(dir)
	os.Rename(dir+".away", dir)
	if r, err := admin.RotateKeys(ctx(t)); err != nil || r.Epoch != 2 {
		t.Fatalf("rotation once the store is back: %+v, %v", r, err)
	}
}

// assertNoSecrets scrapes the parent's metrics into the stack's directory,
// then searches every file there — logs, sealed files, metrics — for each
// secret in raw, hex and base64 forms. Files that are a secret's own home
// (the development secret and sealing key, an import's input) are skipped.
func (e *env) assertNoSecrets(secrets [][]byte, skip ...string) {
	e.t.Helper()
	if line := e.parentP.waitLine(e.t, "parent serving", time.Second); line != "" {
		var l struct{ Metrics string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Metrics != "" {
			if resp, err := http.Get("http://" + l.Metrics + "/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				os.WriteFile(filepath.Join(e.dir, e.name+"metrics.txt"), b, 0o600)
			}
		}
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var forms [][]byte
	for _, s := range secrets {
		if len(s) < 16 {
			e.t.Fatalf("a secret of %d bytes proves nothing", len(s))
		}
		forms = append(forms, s, []byte(hex.EncodeToString(s)), []byte(strings.ToUpper(hex.EncodeToString(s))),
			[]byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s)),
			[]byte(base64.RawStdEncoding.EncodeToString(s)))
	}
	files, homes, homeHits := 0, 0, 0
	filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 || skipped[path] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		if filepath.Base(path) == "dev-master-secret.hex" {
			// The development secret's home is the control: the search
			// must find the secret there, or it proves nothing.
			homes++
			for _, f := range forms {
				if bytes.Contains(b, f) {
					homeHits++
					break
				}
			}
			return nil
		}
		if filepath.Base(path) == "dev-seal.key" {
			return nil
		}
		files++
		for i, f := range forms {
			if bytes.Contains(b, f) {
				e.t.Errorf("%s contains secret %d (form %d)", path, i/6, i%6)
			}
		}
		return nil
	})
	if files < 3 {
		e.t.Fatalf("searched only %d files", files)
	}
	if homes > 0 && homeHits == 0 {
		e.t.Fatal("control failed: the search did not find the development secret in its own file")
	}
	e.t.Logf("searched %d files for %d secrets", files, len(secrets))
}

// The enclave seals through a local KMS that speaks KMS's protocol and
// enforces a PCR policy on the Recipient document: the right image unseals
// after SIGKILL; KMS refusing, another image and a debug enclave leave it
// not ready, saying why; when KMS relents the enclave unseals on its own.
func TestKeysUnsealThroughLocalKMS(t *testing.T) {
	// A first start without keys creates the development root and writes
	// the PCRs the key policy will pin.
	dir, probe := probeLayout(t)

	const keyARN = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	policy := kmstest.Policy{KeyID: keyARN, Roots: probe.devRoots, PCRs: probe.pcrs, Region: "us-east-1",
		AccessKeyID: "ASIAE2ELOCALKMS00001", SecretAccessKey: "e2e-secret-access-key-0123456789abcdefABCDEF",
		SessionToken: "e2e-session-token-fedcba9876543210-session"}
	kms, err := kmstest.Start(policy)
	if err != nil {
		t.Fatal(err)
	}
	defer kms.Close()
	imds := kmstest.StartIMDS(policy)
	defer imds.Close()

	editConfig(t, filepath.Join(dir, "pki", devpki.EnclaveJSON), func(cfg map[string]any) { cfg["sealing"] = kmsSealing(kms, keyARN) })

	e := newKMSEnv(t, dir, "", "", kms, imds)
	e.waitReady()
	admin := e.client("admin")
	if _, err := admin.RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if st, err := admin.KeyStatus(ctx(t)); err != nil || st.Sealer != "kms" || st.Epoch != 2 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	want := e.keyView(e.client("broker"), 2)
	if kms.Calls("GenerateDataKey") != 2 {
		t.Fatalf("GenerateDataKey called %d times, want 2 (import, rotation)", kms.Calls("GenerateDataKey"))
	}

	e.enclave.kill()
	e.startEnclave()
	e.waitReady()
	sameView(t, "unsealed through KMS after SIGKILL", e.keyView(e.client("broker"), 2), want)
	if kms.Calls("Decrypt") < 1 {
		t.Fatal("the restart did not ask KMS to decrypt")
	}

	notReady := func(want string) {
		t.Helper()
		_, reason := e.readiness(func(ready bool, reason string) bool { return !ready && strings.Contains(reason, want) }, 20*time.Second)
		t.Logf("not ready: %s", reason)
	}
	// KMS refuses: not ready, and the reason is KMS's.
	why := "AccessDeniedException"
	kms.Refuse.Store(&why)
	e.enclave.kill()
	e.startEnclave()
	notReady("AccessDeniedException")
	if _, err := e.client("broker").DeriveAddress(ctx(t), omniHex, 1); code(err) != api.CodeSignerDisabled {
		t.Fatalf("derive while sealed: %v", err)
	}
	// KMS relents: the enclave retries and unseals without a restart.
	kms.Refuse.Store(nil)
	e.waitReady()
	sameView(t, "after KMS relented", e.keyView(e.client("broker"), 2), want)

	// Another image: the key policy's PCR0 does not match.
	other := filepath.Join(dir, "other-image")
	os.WriteFile(other, []byte("another enclave image"), 0o644)
	e.enclave.kill()
	e.startEnclave("--sim-image", other)
	// Readiness gives KMS's error code only (its message can quote names
	// the parent chose); the enclave's log has the whole answer.
	notReady("KMS answered AccessDeniedException")
	e.enclave.waitLine(t, "PCR0 does not match", 5*time.Second)
	// A debug-mode enclave.
	e.enclave.kill()
	e.startEnclave("--debug")
	notReady("KMS answered AccessDeniedException")
	e.enclave.waitLine(t, "debug-mode enclaves do not match", 5*time.Second)
	if n := len(kms.Refusals()); n < 3 {
		t.Fatalf("KMS refused %d calls", n)
	}
	e.enclave.kill()
	e.startEnclave()
	e.waitReady()
	sameView(t, "the right image again", e.keyView(e.client("broker"), 2), want)

	e.assertNoSecrets(append(collectKEKs(want), e.devSecret(), []byte(policy.SecretAccessKey), []byte(policy.SessionToken)))
}

// reencodeHeader swaps the first two entries of a sealed file's header map
// (sealer, signer id): the same header in bytes the enclave never writes.
func reencodeHeader(b []byte) []byte {
	n := int(binary.BigEndian.Uint32(b[5:9]))
	hb := b[9 : 9+n]
	entry := func(at int) int { // key, then a text string under 24 bytes
		return 2 + int(hb[at+1]-0x60)
	}
	if hb[0] != 0xa7 || hb[1] != 0x01 || hb[2] < 0x60 || hb[2] >= 0x60+24 {
		return nil // not the shape this knows: the test fails on it
	}
	one := hb[1 : 1+entry(1)]
	if hb[1+len(one)] != 0x02 {
		return nil
	}
	two := hb[1+len(one) : 1+len(one)+entry(1+len(one))]
	out := append([]byte{}, b[:9]...)
	out = append(out, 0xa7)
	out = append(out, two...)
	out = append(out, one...)
	out = append(out, hb[1+len(one)+len(two):]...)
	return append(out, b[9+n:]...)
}

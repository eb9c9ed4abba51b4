package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
)

const (
	attackKeyARN = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	// attackParentKeyARN is a key in an account the parent controls,
	// under the same alias as the operator's key.
	attackParentKeyARN = "arn:aws:kms:us-east-1:444455556666:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	attackAlias        = "alias/signer"
)

// attackParentAccount is an AWS account the hostile parent controls; it
// created the alias the operator uses, for a key whose policy it wrote.
var attackParentAccount = kmstest.Account{
	ID: "444455556666", AccessKeyID: "ASIAE2EPARENTACCOUNT", SecretAccessKey: "e2e-parent-secret-access-key-0123456789",
	SessionToken: "e2e-parent-session-token-0123456789", Aliases: map[string]string{attackAlias: attackParentKeyARN},
}

// kmsStack is a sealed stack whose enclave seals through a local KMS that
// serves two accounts: the operator's (the attested key) and the parent's.
type kmsStack struct {
	t   *testing.T
	e   *env
	kms *kmstest.Server
	cfg string
}

// newKMSStack starts the local KMS and a parent whose IMDS hands out the
// credentials of account served; the enclave is started by start.
func newKMSStack(t *testing.T, served func(kmstest.Policy) kmstest.Account) *kmsStack {
	t.Helper()
	dir, probe := probeLayout(t)

	policy := kmstest.Policy{KeyID: attackKeyARN, Alias: attackAlias, Roots: probe.devRoots, PCRs: probe.pcrs, Region: "us-east-1",
		AccessKeyID: "ASIAE2ELOCALKMS00001", SecretAccessKey: "e2e-secret-access-key-0123456789abcdefABCDEF",
		SessionToken: "e2e-session-token-fedcba9876543210-session", Others: []kmstest.Account{attackParentAccount}}
	k, err := kmstest.Start(policy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	imds := kmstest.StartIMDSAs(served(policy))
	t.Cleanup(imds.Close)

	egressSock := filepath.Join(dir, "egress.sock")
	hostSock := filepath.Join(dir, "host.sock")
	s := &kmsStack{t: t, kms: k, cfg: filepath.Join(dir, "pki", devpki.EnclaveJSON), e: &env{t: t, dir: dir, sock: filepath.Join(dir, "enclave.sock"),
		enclaveExtra: []string{"--host", "unix://" + hostSock, "--egress", "unix://" + egressSock},
		parentExtra: []string{"--state-dir", filepath.Join(dir, "state"), "--host-listen", "unix://" + hostSock,
			"--egress-listen", "unix://" + egressSock, "--egress-allow", k.HostPort(), "--imds", imds.URL},
	}}
	s.e.launchParent("unix://" + s.e.sock)
	return s
}

// configure writes the enclave configuration's KMS key.
func (s *kmsStack) configure(keyID string) {
	s.t.Helper()
	editConfig(s.t, s.cfg, func(cfg map[string]any) { cfg["sealing"] = kmsSealing(s.kms, keyID) })
}

// start runs the enclave and reports whether it serves; when it exits
// instead, its log lines are returned.
func (s *kmsStack) start(extra ...string) (bool, []string) {
	s.t.Helper()
	e := s.e
	args := append([]string{"--config", s.cfg, "--listen", "unix://" + e.sock, "--state-dir", filepath.Join(e.dir, "nsm")}, e.enclaveExtra...)
	e.enclave = start(s.t, filepath.Join(e.dir, "enclave.log"), "enclave", append(args, extra...)...)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		e.enclave.mu.Lock()
		serving := slices.ContainsFunc(e.enclave.lines, func(l string) bool { return strings.Contains(l, "enclave serving") })
		e.enclave.mu.Unlock()
		if serving {
			e.loadDevState()
			e.waitConnected()
			return true, nil
		}
		select {
		case <-e.enclave.done:
			e.enclave.mu.Lock()
			defer e.enclave.mu.Unlock()
			return false, slices.Clone(e.enclave.lines)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.t.Fatal("the enclave neither served nor exited")
	return false, nil
}

// sealedFiles are the state store's sealed keyrings, oldest first.
func (s *kmsStack) sealedFiles() [][]byte {
	s.t.Helper()
	entries, _ := os.ReadDir(s.e.stateDir())
	var out [][]byte
	for _, de := range entries {
		if de.Type().IsRegular() && !strings.HasPrefix(de.Name(), ".") {
			b, err := os.ReadFile(filepath.Join(s.e.stateDir(), de.Name()))
			if err != nil {
				s.t.Fatal(err)
			}
			if _, err := seal.ParseHeader(b); err == nil {
				out = append(out, b)
			}
		}
	}
	return out
}

// parentReads tries, as the parent, every sealed keyring, newest first,
// with its own account's credentials; it fails the test with what the
// parent learnt.
func (s *kmsStack) parentReads(c interface {
	DeriveAddress(context.Context, string, uint32) (string, error)
}) {
	s.t.Helper()
	files := s.sealedFiles()
	for i := len(files) - 1; i >= 0; i-- {
		blob := files[i]
		k, _, err := seal.Open(context.Background(), s.kms.Owner(attackParentAccount), devpki.SignerID, blob)
		if err != nil {
			continue
		}
		ring := keyring.New()
		for _, sec := range k.Epochs {
			ring.Add(sec)
		}
		o, _ := keyring.ParseOmni(omniHex)
		key, err := ring.Derive(keyring.Wallet, uint32(len(k.Epochs)), o)
		if err != nil {
			s.t.Fatal(err)
		}
		got := key.Address().Hex()
		want, err := c.DeriveAddress(ctx(s.t), omniHex, uint32(len(k.Epochs)))
		if err != nil {
			s.t.Fatal(err)
		}
		s.t.Fatalf("the parent opened sealed keyring %d with its own key (%d epochs); it derives %s for epoch %d, the enclave answers %s (same: %v)",
			i+1, len(k.Epochs), got, len(k.Epochs), want, strings.EqualFold(got, want))
	}
}

// brokerAddress adapts the client to parentReads.
type brokerAddress struct{ e *env }

func (b brokerAddress) DeriveAddress(ctx context.Context, omni string, epoch uint32) (string, error) {
	a, err := b.e.client("broker").DeriveAddress(ctx, omni, epoch)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

// A parent that serves its own account's credentials, where it created the
// alias the configuration names, would have every keyring sealed under its
// key and read every epoch. The enclave refuses an alias, a bare key id or
// an alias ARN at start; with the key's ARN, the parent's credentials get
// no data key, and nothing is sealed.
func TestKMSAliasInConfigIsRefused(t *testing.T) {
	s := newKMSStack(t, func(kmstest.Policy) kmstest.Account { return attackParentAccount })
	s.configure(attackAlias)
	serving, lines := s.start()
	if serving {
		s.e.waitReady()
		if _, err := s.e.client("admin").RotateKeys(ctx(t)); err != nil {
			t.Fatalf("rotate: %v", err)
		}
		s.parentReads(brokerAddress{s.e})
		t.Fatalf("the enclave took key id %q and served (sealed %d keyrings)", attackAlias, len(s.sealedFiles()))
	}
	log := strings.Join(lines, "\n")
	if !strings.Contains(log, "alias name is resolved in the account of the credentials the parent supplies") {
		t.Fatalf("the enclave exited without saying why the alias is refused:\n%s", log)
	}
	for _, bad := range []string{"1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-east-1:111122223333:" + attackAlias} {
		s.configure(bad)
		if serving, lines := s.start(); serving || !strings.Contains(strings.Join(lines, "\n"), "full key ARN") {
			t.Fatalf("key id %q: serving %v\n%s", bad, serving, strings.Join(lines, "\n"))
		}
	}

	// The key's ARN, with the parent still serving its own credentials:
	// KMS grants them nothing on the operator's key, so no epoch exists.
	s.configure(attackKeyARN)
	if serving, lines := s.start("--no-keys"); !serving {
		t.Fatalf("the enclave did not start with the key's ARN:\n%s", strings.Join(lines, "\n"))
	}
	if _, err := s.e.client("admin").ImportSecret(ctx(t), bytes.Repeat([]byte{7}, 32)); err == nil {
		t.Fatal("a keyring was imported with the parent's credentials")
	} else {
		t.Logf("import with the parent's credentials: %v", err)
	}
	if n := len(s.sealedFiles()); n != 0 {
		t.Fatalf("%d sealed keyrings stored", n)
	}
	if n := s.kms.Used(attackParentKeyARN); n != 0 {
		t.Fatalf("the parent's key served %d calls", n)
	}
	if n := s.kms.Calls("GenerateDataKey"); n != 0 {
		t.Fatalf("KMS handed out %d data keys", n)
	}
}

// With the key's ARN configured and the operator's credentials, a KMS
// answer that names another key is refused: a rotation fails and stores
// nothing, and a restart does not unseal until KMS answers for the key.
func TestKMSAnswerForAnotherKeyIsRefused(t *testing.T) {
	s := newKMSStack(t, kmstest.Policy.Operator)
	s.configure(attackKeyARN)
	if serving, lines := s.start(); !serving {
		t.Fatalf("the enclave did not start:\n%s", strings.Join(lines, "\n"))
	}
	s.e.waitReady()
	admin := s.e.client("admin")
	before := len(s.sealedFiles())
	want := s.e.keyView(s.e.client("broker"), 1)

	other := attackParentKeyARN
	s.kms.AnswerKeyID.Store(&other)
	if _, err := admin.RotateKeys(ctx(t)); err == nil {
		s.parentReads(brokerAddress{s.e})
		t.Fatalf("a rotation was sealed under an answer for %s", other)
	} else {
		t.Logf("rotate: %v", err)
	}
	if st, err := admin.KeyStatus(ctx(t)); err != nil || st.Epoch != 1 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if n := len(s.sealedFiles()); n != before {
		t.Fatalf("%d sealed keyrings, before %d", n, before)
	}
	// A restart: Decrypt answers for another key too, so it waits.
	s.e.enclave.kill()
	if serving, lines := s.start(); !serving {
		t.Fatalf("the enclave did not start:\n%s", strings.Join(lines, "\n"))
	}
	_, reason := s.e.readiness(func(ready bool, reason string) bool { return !ready && reason != "" }, 20*time.Second)
	t.Logf("not ready: %s", reason)
	if strings.Contains(reason, other) {
		t.Fatalf("the reason quotes the answer: %s", reason)
	}
	s.kms.AnswerKeyID.Store(nil)
	s.e.waitReady()
	sameView(t, "after KMS answered for the key again", s.e.keyView(s.e.client("broker"), 1), want)
}

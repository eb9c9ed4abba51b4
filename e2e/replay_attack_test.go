package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// The rule these tests defend (G3, G6): no request is accepted by any
// enclave instance other than the one the caller attested, and none twice
// by the same instance across its restarts. Each records a genuine admin
// rotation at the channel, then delivers the recorded frame where the
// caller never sent it.

// recordedRotation rotates e's keys through a frameMITM in front of it and
// returns the recorded call frame and the MITM.
func recordedRotation(t *testing.T, e *env, others ...string) (channel.Frame, *frameMITM) {
	t.Helper()
	m := e.behindMITM(others...)
	e.waitReady()
	res, err := e.client("admin").RotateKeys(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 2 {
		t.Fatalf("rotation gave epoch %d, want 2", res.Epoch)
	}
	calls := m.calls(api.RotateKeys.Route)
	if len(calls) != 1 {
		t.Fatalf("recorded %d rotations, want 1", len(calls))
	}
	return calls[0], m
}

func (e *env) epoch() uint32 {
	e.t.Helper()
	st, err := e.client("admin").KeyStatus(ctx(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Epoch
}

func sealedFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range entries {
		if !d.IsDir() {
			out = append(out, d.Name())
		}
	}
	sort.Strings(out)
	return out
}

func TestReplayToAnotherReplicaIsRefused(t *testing.T) {
	a := newSealedEnv(t, "", "a-")
	b := newSealedEnv(t, a.dir, "b-")
	b.waitReady()
	rotate, m := recordedRotation(t, a, b.sock)
	reply := m.replay(1, rotate)
	if code := b.signedCode(b.sock, rotate, reply); code != api.CodeWrongEnclave {
		t.Fatalf("replica b answered %q to a rotation signed for a, want %q", code, api.CodeWrongEnclave)
	}
	if ep := b.epoch(); ep != 1 {
		t.Fatalf("the replayed rotation changed replica b: epoch %d", ep)
	}
}

func TestReplayAfterEnclaveRestartIsRefused(t *testing.T) {
	a := newSealedEnv(t, "", "a-")
	rotate, m := recordedRotation(t, a)
	a.enclave.kill()
	a.startEnclave()
	a.waitReady()
	reply := m.replay(0, rotate)
	if code := a.signedCode(a.sock, rotate, reply); code != api.CodeWrongEnclave {
		t.Fatalf("the restarted enclave answered %q to a rotation signed before the restart, want %q", code, api.CodeWrongEnclave)
	}
	if ep := a.epoch(); ep != 2 {
		t.Fatalf("the replayed rotation changed the keyring: epoch %d, want 2", ep)
	}
}

func TestReplayAfterHidingSealedFilesIsRefused(t *testing.T) {
	a := newSealedEnv(t, "", "a-")
	before := sealedFiles(t, a.stateDir())
	rotate, m := recordedRotation(t, a)
	after := sealedFiles(t, a.stateDir())
	if len(after) <= len(before) {
		t.Fatalf("the rotation wrote no sealed file: %v then %v", before, after)
	}
	// The parent hides the rotation's sealed keyring and restarts the
	// enclave, which boots at epoch 1 again.
	a.enclave.stop()
	hidden := t.TempDir()
	for _, name := range after[len(before):] {
		if err := os.Rename(filepath.Join(a.stateDir(), name), filepath.Join(hidden, name)); err != nil {
			t.Fatal(err)
		}
	}
	a.startEnclave()
	a.waitReady()
	if ep := a.epoch(); ep != 1 {
		t.Fatalf("with the newest sealed file hidden the enclave booted at epoch %d, want 1", ep)
	}
	reply := m.replay(0, rotate)
	if code := a.signedCode(a.sock, rotate, reply); code != api.CodeWrongEnclave {
		t.Fatalf("the enclave answered %q to the replayed rotation, want %q", code, api.CodeWrongEnclave)
	}
	if ep := a.epoch(); ep != 1 {
		t.Fatalf("the replayed rotation re-created epoch %d", ep)
	}
	if got := sealedFiles(t, a.stateDir()); len(got) != len(before) {
		t.Fatalf("the replayed rotation wrote sealed files: %v", got)
	}
}

// TestClientRidesThroughRestartAndReplicaChange: requests name the
// attested instance, and a client whose instance went away (a restart, or
// the parent routing it to another replica) re-attests and re-signs once,
// without an error surfacing.
func TestClientRidesThroughRestartAndReplicaChange(t *testing.T) {
	a, _, m := twoReplicas(t)
	c := a.client("broker")
	first, err := c.DeriveAddress(ctx(t), omniHex, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.enclave.kill()
	a.startEnclave()
	a.waitReady()
	got, err := c.DeriveAddress(ctx(t), omniHex, 0)
	if err != nil {
		t.Fatalf("after an enclave restart: %v", err)
	}
	if got.Address != first.Address {
		t.Fatalf("after the restart %s, before %s", got.Address, first.Address)
	}
	m.route(1)
	got, err = c.DeriveAddress(ctx(t), omniHex, 0)
	if err != nil {
		t.Fatalf("after a change of replica: %v", err)
	}
	if got.Address != first.Address {
		t.Fatalf("replica b answered %s, a %s", got.Address, first.Address)
	}
}

// TestOneCallerCannotFillTheReplayCacheForAll is finding 5: a worker that
// spends the replay cache as fast as it can is refused once its own share
// is used up, and the admin and the broker are still served.
func TestOneCallerCannotFillTheReplayCacheForAll(t *testing.T) {
	e := newEnv(t)
	editConfig(t, filepath.Join(e.dir, "pki", devpki.EnclaveJSON), func(cfg map[string]any) {
		limits, _ := cfg["limits"].(map[string]any)
		if limits == nil {
			limits = map[string]any{}
		}
		limits["replay_entries"] = 1024 // the smallest cache the configuration allows
		cfg["limits"] = limits
	})
	e.enclave.stop()
	e.startEnclave()
	e.waitConnected()

	worker := e.client("worker")
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1100 / 8 {
				if _, err := worker.DeriveAddress(ctx(t), omniHex, 0); code(err) == api.CodeOverloaded {
					refused.Add(1)
				} else if err != nil {
					t.Errorf("worker: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatal("the worker sent more requests than the cache holds and none was refused")
	}
	if _, err := worker.DeriveAddress(ctx(t), omniHex, 0); code(err) != api.CodeOverloaded {
		t.Fatalf("the worker past its share: %v, want overloaded", err)
	}
	if _, err := e.client("broker").DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatalf("the broker after a worker filled the replay cache: %v", err)
	}
	if _, err := e.client("admin").KeyStatus(ctx(t)); err != nil {
		t.Fatalf("the admin after a worker filled the replay cache: %v", err)
	}
}

package e2e

import (
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/custody"
)

// TestOneRotateCallChangesOneReplica: the client re-signs once on
// wrong_enclave, but the first request stays valid at the instance it was
// signed for. A parent that routes the admin's rotation to replica b (which
// answers a genuine wrong_enclave), lets the re-signed request rotate b, and
// then delivers the first request to a, the replica the admin attested,
// turns one RotateKeys call into two rotations: epoch 2 forks.
func TestOneRotateCallChangesOneReplica(t *testing.T) {
	dir := t.TempDir()
	a := newSealedEnv(t, dir, "a-")
	b := newSealedEnv(t, dir, "b-")
	b.waitReady()
	m := startFrameMITM(t, a.sock, b.sock)
	a.parentP.stop()
	a.startParent(m.addr)
	a.waitReady()

	admin := a.client("admin")
	if _, err := admin.KeyStatus(ctx(t)); err != nil { // attests a
		t.Fatal(err)
	}
	m.route(1) // from now on the parent sends everything to b
	res, err := admin.RotateKeys(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 2 {
		t.Fatalf("rotation gave epoch %d, want 2", res.Epoch)
	}
	calls := m.calls(custody.RouteRotate)
	if len(calls) != 2 {
		t.Fatalf("recorded %d rotations, want 2 (the first for a, the re-signed one for b)", len(calls))
	}
	// The first request, signed for a, never reached a: deliver it now.
	reply := m.replay(0, calls[0])
	code := a.signedCode(a.sock, calls[0], reply)
	m.route(0)
	ea := a.epoch()
	m.route(1)
	eb := a.epoch()
	if ea == 2 && eb == 2 {
		t.Fatalf("one RotateKeys call rotated both replicas (a answered %q): epoch 2 forked", code)
	}
}

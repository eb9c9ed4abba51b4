package state_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nitro-signer/nitro-signer/parent/state"
)

func TestOpenRemovesTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600)
	if _, err := state.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !os.IsNotExist(err) {
		t.Fatal("temporary file left")
	}
}

// A store whose directory is gone refuses the write and reports it; the
// files written before are untouched.
func TestPutFailsWhenDirectoryUnwritable(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "state")
	s, _ := state.Open(dir)
	s.Put(ctx, 1, []byte("first"))
	os.Rename(dir, dir+".moved")
	os.WriteFile(dir, []byte("not a directory"), 0o600)
	if err := s.Put(ctx, 2, []byte("second")); err == nil {
		t.Fatal("put succeeded into a missing directory")
	}
	b, err := os.ReadFile(filepath.Join(dir+".moved", state.Name(1)))
	if err != nil || string(b) != "first" {
		t.Fatalf("first write: %q, %v", b, err)
	}
}

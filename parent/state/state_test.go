package state_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nitro-signer/nitro-signer/parent/state"
)

func TestPutAppendsSequences(t *testing.T) {
	s, err := state.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	if seqs, _ := s.List(); len(seqs) != 0 {
		t.Fatalf("new store lists %v", seqs)
	}
	for i := 1; i <= 3; i++ {
		seq, err := s.Put([]byte{byte(i)})
		if err != nil || seq != uint64(i) {
			t.Fatalf("put %d: sequence %d, %v", i, seq, err)
		}
	}
	seqs, _ := s.List()
	if !slices.Equal(seqs, []uint64{3, 2, 1}) {
		t.Fatalf("list = %v, want newest first", seqs)
	}
	for _, seq := range seqs {
		b, err := s.Get(seq)
		if err != nil || !bytes.Equal(b, []byte{byte(seq)}) {
			t.Fatalf("get %d = %x, %v", seq, b, err)
		}
	}
	if _, err := s.Get(9); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("missing sequence: %v", err)
	}
}

func TestListIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := state.Open(dir)
	s.Put([]byte("a"))
	for _, n := range []string{"keyring-1.sealed", "keyring-00000000000000000000.sealed", "notes.txt", "keyring-x.sealed"} {
		os.WriteFile(filepath.Join(dir, n), []byte("z"), 0o600)
	}
	os.Mkdir(filepath.Join(dir, state.Name(7)), 0o700)
	seqs, _ := s.List()
	if !slices.Equal(seqs, []uint64{1}) {
		t.Fatalf("list = %v", seqs)
	}
}

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
	s.Put([]byte("first"))
	os.Rename(dir, dir+".moved")
	os.WriteFile(dir, []byte("not a directory"), 0o600)
	if _, err := s.Put([]byte("second")); err == nil {
		t.Fatal("put succeeded into a missing directory")
	}
	b, err := os.ReadFile(filepath.Join(dir+".moved", state.Name(1)))
	if err != nil || string(b) != "first" {
		t.Fatalf("first write: %q, %v", b, err)
	}
}

func TestPutRefusesOversizedAndEmpty(t *testing.T) {
	s, _ := state.Open(t.TempDir())
	for _, b := range [][]byte{nil, make([]byte, state.MaxBlob+1)} {
		if _, err := s.Put(b); err == nil {
			t.Fatalf("stored %d bytes", len(b))
		}
	}
}

func TestGetRefusesOversizedFile(t *testing.T) {
	dir := t.TempDir()
	s, _ := state.Open(dir)
	os.WriteFile(filepath.Join(dir, state.Name(1)), make([]byte, state.MaxBlob+1), 0o600)
	if _, err := s.Get(1); err == nil {
		t.Fatal("read an oversized file")
	}
}

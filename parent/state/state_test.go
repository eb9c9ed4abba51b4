package state_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nitro-signer/nitro-signer/parent/state"
)

var ctx = context.Background()

func TestPutStoresSequences(t *testing.T) {
	s, err := state.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	if seqs, _ := s.List(ctx, 10); len(seqs) != 0 {
		t.Fatalf("new store lists %v", seqs)
	}
	for i := 1; i <= 3; i++ {
		if err := s.Put(ctx, uint64(i), []byte{byte(i)}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	seqs, _ := s.List(ctx, 10)
	if !slices.Equal(seqs, []uint64{3, 2, 1}) {
		t.Fatalf("list = %v, want newest first", seqs)
	}
	if seqs, _ := s.List(ctx, 2); !slices.Equal(seqs, []uint64{3, 2}) {
		t.Fatalf("list of at most 2 = %v", seqs)
	}
	for _, seq := range seqs {
		b, err := s.Get(ctx, seq)
		if err != nil || !bytes.Equal(b, []byte{byte(seq)}) {
			t.Fatalf("get %d = %x, %v", seq, b, err)
		}
	}
	if _, err := s.Get(ctx, 9); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("missing sequence: %v", err)
	}
	if err := s.Put(ctx, 2, []byte("other")); !errors.Is(err, state.ErrExists) {
		t.Fatalf("second write of sequence 2: %v, want ErrExists", err)
	}
	if b, _ := s.Get(ctx, 2); !bytes.Equal(b, []byte{2}) {
		t.Fatalf("sequence 2 was replaced: %x", b)
	}
}

func TestListIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := state.Open(dir)
	s.Put(ctx, 1, []byte("a"))
	for _, n := range []string{"keyring-1.sealed", "keyring-00000000000000000000.sealed", "notes.txt", "keyring-x.sealed"} {
		os.WriteFile(filepath.Join(dir, n), []byte("z"), 0o600)
	}
	os.Mkdir(filepath.Join(dir, state.Name(7)), 0o700)
	seqs, _ := s.List(ctx, 10)
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

func TestPutRefusesOversizedAndEmpty(t *testing.T) {
	s, _ := state.Open(t.TempDir())
	for _, b := range [][]byte{nil, make([]byte, state.MaxBlob+1)} {
		if err := s.Put(ctx, 1, b); err == nil {
			t.Fatalf("stored %d bytes", len(b))
		}
	}
}

func TestGetRefusesOversizedFile(t *testing.T) {
	dir := t.TempDir()
	s, _ := state.Open(dir)
	os.WriteFile(filepath.Join(dir, state.Name(1)), make([]byte, state.MaxBlob+1), 0o600)
	if _, err := s.Get(ctx, 1); err == nil {
		t.Fatal("read an oversized file")
	}
}

// Package state is the parent's store of sealed keyrings: a directory of
// files, one per write, never overwritten in place.
//
// Each write gets the next sequence number and lands as
// keyring-<sequence>.sealed by writing a temporary file, syncing it, linking
// it to its final name (which fails rather than replace an existing file) and
// syncing the directory. Earlier sequences stay, so a write that turns out
// bad (or a file corrupted later) leaves the previous one to fall back to,
// and the bad one stays for inspection. The parent cannot read what it
// stores: it keeps bytes the enclave sealed.
package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// MaxBlob bounds one stored file.
const MaxBlob = 64 << 10

const (
	filePrefix = "keyring-"
	fileSuffix = ".sealed"
	tmpPrefix  = ".tmp-"
)

// ErrNotFound: no file has that sequence.
var ErrNotFound = errors.New("state: no such sequence")

// Store is a state directory.
type Store struct {
	dir string
	mu  sync.Mutex // serializes writes
}

// Open opens dir, creating it (mode 0700) when absent, and removes
// temporary files a crash left behind.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Name is the file name of a sequence.
func Name(seq uint64) string { return fmt.Sprintf("%s%020d%s", filePrefix, seq, fileSuffix) }

// List returns the stored sequences, newest first.
func (s *Store) List() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, filePrefix) || !strings.HasSuffix(n, fileSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, filePrefix), fileSuffix), 10, 64)
		if err != nil || seq == 0 || Name(seq) != n {
			continue
		}
		out = append(out, seq)
	}
	slices.SortFunc(out, func(a, b uint64) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	return out, nil
}

// Get reads one sequence.
func (s *Store) Get(seq uint64) ([]byte, error) {
	f, err := os.Open(filepath.Join(s.dir, Name(seq)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBlob+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBlob {
		return nil, fmt.Errorf("state: sequence %d is over %d bytes", seq, MaxBlob)
	}
	return b, nil
}

// Put stores b under the next sequence and returns it once b is durable.
func (s *Store) Put(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > MaxBlob {
		return 0, fmt.Errorf("state: refusing a blob of %d bytes", len(b))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.List()
	if err != nil {
		return 0, err
	}
	var seq uint64 = 1
	if len(seqs) > 0 {
		seq = seqs[0] + 1
	}
	tmp, err := os.CreateTemp(s.dir, tmpPrefix)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	// A hard link never replaces an existing file, unlike rename.
	if err := os.Link(tmp.Name(), filepath.Join(s.dir, Name(seq))); err != nil {
		return 0, err
	}
	if err := syncDir(s.dir); err != nil {
		return 0, err
	}
	return seq, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

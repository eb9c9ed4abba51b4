package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	filePrefix = "keyring-"
	fileSuffix = ".sealed"
	tmpPrefix  = ".tmp-"
)

// Errors of a Store.
var (
	// ErrNotFound: no sealed keyring has that sequence.
	ErrNotFound = errors.New("state: no such sequence")
	// ErrExists: the sequence is already stored, with other bytes than
	// the Put's; nothing was written.
	ErrExists = errors.New("state: sequence already stored")
)

// Store keeps sealed keyrings by sequence.
type Store interface {
	// List returns at most max stored sequences, the newest first.
	List(ctx context.Context, max int) ([]uint64, error)
	// Get reads one sequence, or returns ErrNotFound.
	Get(ctx context.Context, seq uint64) ([]byte, error)
	// Put stores b as seq, durably, unless seq is stored already with
	// other bytes (ErrExists). It never replaces a stored sequence. A Put
	// of the bytes seq already holds succeeds: it is a retry whose first
	// answer was lost (sealed bytes never repeat between writers).
	Put(ctx context.Context, seq uint64, b []byte) error
	// String names the store for logs (a directory, s3://bucket/prefix).
	String() string
}

// Dir is a state directory: keyring-<sequence>.sealed per sequence, each
// written by writing a temporary file, syncing it, linking it to its final
// name (which fails rather than replace an existing file) and syncing the
// directory.
type Dir struct {
	dir string
}

var _ Store = (*Dir)(nil)

// Open opens dir, creating it (mode 0700) when absent, and removes
// temporary files a crash left behind.
func Open(dir string) (*Dir, error) {
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
	return &Dir{dir: dir}, nil
}

// String is the store's directory.
func (s *Dir) String() string { return s.dir }

// Name is the file name of a sequence.
func Name(seq uint64) string { return fmt.Sprintf("%s%020d%s", filePrefix, seq, fileSuffix) }

// List returns at most max stored sequences, newest first.
func (s *Dir) List(_ context.Context, max int) ([]uint64, error) {
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
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// Get reads one sequence.
func (s *Dir) Get(_ context.Context, seq uint64) ([]byte, error) {
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

// Put stores b as seq once b is durable, unless seq is stored already.
func (s *Dir) Put(ctx context.Context, seq uint64, b []byte) error {
	if seq == 0 || len(b) == 0 || len(b) > MaxBlob {
		return fmt.Errorf("state: refusing sequence %d of %d bytes", seq, len(b))
	}
	tmp, err := os.CreateTemp(s.dir, tmpPrefix)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A hard link never replaces an existing file, unlike rename: of two
	// writers of one sequence exactly one links.
	err = os.Link(tmp.Name(), filepath.Join(s.dir, Name(seq)))
	if errors.Is(err, fs.ErrExist) {
		if err := existsUnlessSame(ctx, s, seq, b); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

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
	// seqDigits is the width of a sequence in a name: the digits of
	// MaxUint64, so that names sort as their sequences do.
	seqDigits = 20
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
	// List returns the stored sequences strictly above after, ascending,
	// at most max of them (max is at least 1). more is true when the
	// listing stopped before the store's end: max was reached with keys
	// possibly remaining, or the store's own bound on one listing was hit;
	// the caller lists again after the last sequence returned. A listing
	// that hits that bound having found no sequence at all is an error
	// (names that are not sequences fill the store's place above after),
	// never an empty success: an empty answer with more false says there
	// is no sequence above after.
	//
	// Oldest first from a point the caller chooses is what keeps a
	// lineage in view: whoever can write the store can add sequences
	// above it, but cannot push the ones above after out of the listing.
	List(ctx context.Context, after uint64, max int) (seqs []uint64, more bool, err error)
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

// Name is the name of a sequence in either store: keyring-, the sequence
// in 20 decimal digits, .sealed. Names of equal length sort as their
// sequences.
func Name(seq uint64) string { return fmt.Sprintf("%s%020d%s", filePrefix, seq, fileSuffix) }

// List returns the stored sequences above after, ascending, at most max;
// more says there were more than max. Names that are not exactly
// Name(seq) of a sequence above zero are ignored.
func (s *Dir) List(_ context.Context, after uint64, max int) ([]uint64, bool, error) {
	if max < 1 {
		return nil, false, fmt.Errorf("state: list of at most %d sequences", max)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, false, err
	}
	var out []uint64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if seq := nameSeq(e.Name()); seq > after {
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	if len(out) > max {
		return out[:max], true, nil
	}
	return out, false, nil
}

// nameSeq is the sequence a name (Name's form) names, or 0 for any other
// name: exactly keyring-, 20 decimal digits, .sealed, above zero.
func nameSeq(name string) uint64 {
	digits, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return 0
	}
	if digits, ok = strings.CutSuffix(digits, fileSuffix); !ok || len(digits) != seqDigits {
		return 0
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || seq == 0 || Name(seq) != name {
		return 0
	}
	return seq
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

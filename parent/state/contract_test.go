package state_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nitro-signer/nitro-signer/internal/s3test"
	"github.com/nitro-signer/nitro-signer/parent/state"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

var ctx = context.Background()

// backend is one Store under the contract, with a way to write behind
// its back (a file in the directory, an object in the bucket).
type backend struct {
	store state.Store
	// raw writes name (relative to the store) with b, replacing it.
	raw func(t *testing.T, name string, b []byte)
	// own is the store's own name for a sequence.
	own func(seq uint64) string
	// foreign are names in the store's place that are not its sequences.
	foreign []string
}

func dirBackend(t *testing.T) *backend {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &backend{
		store: s,
		raw: func(t *testing.T, name string, b []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		own: state.Name,
		foreign: []string{
			"keyring-1.sealed", "keyring-00000000000000000000.sealed", "keyring-x.sealed", "notes.txt",
			"keyring-00000000000000000005.sealed.bak", "keyring-+0000000000000000005.sealed",
			fmt.Sprintf("keyring-%020d-%020d.sealed", uint64(math.MaxUint64-6), 6),
		},
	}
}

func s3Backend(t *testing.T) *backend {
	srv := s3test.Start(t)
	// A prefix of two segments, within the test's own.
	prefix := path.Join(srv.Prefix, "fleet/a") + "/"
	s, err := state.OpenS3(ctx, "s3://"+srv.Bucket+"/"+prefix, state.S3Options{
		Endpoint: srv.Endpoint, Region: srv.Region, Credentials: srv.Credentials(),
	})
	if err != nil {
		t.Fatal(err)
	}
	client := srv.Client()
	return &backend{
		store: s,
		raw: func(t *testing.T, name string, b []byte) {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(srv.Bucket), Key: aws.String(prefix + name), Body: bytes.NewReader(b),
			}); err != nil {
				t.Fatal(err)
			}
		},
		own: func(seq uint64) string { return s.Key(seq)[len(prefix):] },
		foreign: []string{
			// The directory's names, copied into the bucket by hand, are
			// not sequences here.
			state.Name(5), "keyring-1.sealed", "notes.txt",
			// Sequence 0, and names whose two numbers disagree.
			fmt.Sprintf("keyring-%020d-%020d.sealed", uint64(math.MaxUint64), 0),
			fmt.Sprintf("keyring-%020d-%020d.sealed", uint64(math.MaxUint64-6), 7),
			fmt.Sprintf("keyring-%020d-%020d.sealed", uint64(math.MaxUint64-6), 6) + ".bak",
			fmt.Sprintf("keyring-%020d-+%019d.sealed", uint64(math.MaxUint64-6), 6),
			fmt.Sprintf("keyring-%020d-%020d.SEALED", uint64(math.MaxUint64-6), 6),
			// Deeper in the prefix.
			"old/" + fmt.Sprintf("keyring-%020d-%020d.sealed", uint64(math.MaxUint64-6), 6),
		},
	}
}

var backends = []struct {
	name string
	open func(t *testing.T) *backend
}{
	{"dir", dirBackend},
	{"s3", s3Backend},
}

// TestStoreContract runs one set of tests against every Store.
func TestStoreContract(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("put_get_list", func(t *testing.T) { testPutGetList(t, b.open(t)) })
			t.Run("bad_second_write", func(t *testing.T) { testSecondWrite(t, b.open(t)) })
			t.Run("bad_foreign_names", func(t *testing.T) { testForeignNames(t, b.open(t)) })
			t.Run("bad_sizes", func(t *testing.T) { testSizes(t, b.open(t)) })
			t.Run("bad_oversized_stored", func(t *testing.T) { testOversizedStored(t, b.open(t)) })
			t.Run("concurrent_writers", func(t *testing.T) { testConcurrentWriters(t, b.open(t)) })
		})
	}
}

func testPutGetList(t *testing.T, b *backend) {
	s := b.store
	if seqs, err := s.List(ctx, 10); err != nil || len(seqs) != 0 {
		t.Fatalf("new store lists %v, %v", seqs, err)
	}
	// Out of order, with gaps, and the largest sequence there is.
	put := []uint64{3, 1, 10, 2, 11, 100, math.MaxUint64, 12}
	for _, seq := range put {
		if err := s.Put(ctx, seq, blob(seq, 0)); err != nil {
			t.Fatalf("put %d: %v", seq, err)
		}
	}
	all := slices.Clone(put)
	slices.Sort(all)
	slices.Reverse(all)
	for _, max := range []int{0, 1, 3, len(all), 100} {
		seqs, err := s.List(ctx, max)
		want := all[:min(max, len(all))]
		if err != nil || !slices.Equal(seqs, want) {
			t.Fatalf("list of at most %d = %v, %v; want %v", max, seqs, err, want)
		}
	}
	for _, seq := range put {
		got, err := s.Get(ctx, seq)
		if err != nil || !bytes.Equal(got, blob(seq, 0)) {
			t.Fatalf("get %d = %x, %v", seq, got, err)
		}
	}
	for _, seq := range []uint64{4, 99, math.MaxUint64 - 1} {
		if _, err := s.Get(ctx, seq); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("get of missing %d: %v, want ErrNotFound", seq, err)
		}
	}
}

func testSecondWrite(t *testing.T, b *backend) {
	s := b.store
	if err := s.Put(ctx, 7, blob(7, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, 7, blob(7, 2)); !errors.Is(err, state.ErrExists) {
		t.Fatalf("second write of 7: %v, want ErrExists", err)
	}
	if got, err := s.Get(ctx, 7); err != nil || !bytes.Equal(got, blob(7, 1)) {
		t.Fatalf("7 after the second write = %x, %v; want the first's bytes", got, err)
	}
	// The first writer's bytes again: a retry whose answer was lost.
	if err := s.Put(ctx, 7, blob(7, 1)); err != nil {
		t.Fatalf("the first's bytes again: %v", err)
	}
	if seqs, _ := s.List(ctx, 10); !slices.Equal(seqs, []uint64{7}) {
		t.Fatalf("list = %v", seqs)
	}
}

func testForeignNames(t *testing.T, b *backend) {
	s := b.store
	for _, seq := range []uint64{4, 8} {
		if err := s.Put(ctx, seq, blob(seq, 0)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range b.foreign {
		b.raw(t, name, []byte("foreign"))
	}
	// Names that sort between the store's own, so a short listing must
	// page past them.
	for _, seq := range []uint64{4, 8, 9} {
		b.raw(t, b.own(seq)+"x", []byte("foreign"))
	}
	for _, max := range []int{1, 2, 10} {
		seqs, err := s.List(ctx, max)
		want := []uint64{8, 4}[:min(max, 2)]
		if err != nil || !slices.Equal(seqs, want) {
			t.Fatalf("list of at most %d = %v, %v; want %v", max, seqs, err, want)
		}
	}
	if _, err := s.Get(ctx, 6); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("get 6 (only foreign names hold it): %v", err)
	}
}

func testSizes(t *testing.T, b *backend) {
	s := b.store
	for _, c := range []struct {
		name string
		seq  uint64
		b    []byte
	}{
		{"bad_empty", 1, nil},
		{"bad_oversized", 1, make([]byte, state.MaxBlob+1)},
		{"bad_sequence_zero", 0, []byte("a")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Put(ctx, c.seq, c.b); err == nil || errors.Is(err, state.ErrExists) {
				t.Fatalf("put of %d bytes as %d: %v", len(c.b), c.seq, err)
			}
		})
	}
	if seqs, _ := s.List(ctx, 10); len(seqs) != 0 {
		t.Fatalf("refused writes left %v", seqs)
	}
	full := bytes.Repeat([]byte{7}, state.MaxBlob)
	if err := s.Put(ctx, 2, full); err != nil {
		t.Fatalf("put of MaxBlob bytes: %v", err)
	}
	if got, err := s.Get(ctx, 2); err != nil || !bytes.Equal(got, full) {
		t.Fatalf("get of MaxBlob bytes: %d bytes, %v", len(got), err)
	}
}

func testOversizedStored(t *testing.T, b *backend) {
	b.raw(t, b.own(1), make([]byte, state.MaxBlob+1))
	if got, err := b.store.Get(ctx, 1); err == nil || errors.Is(err, state.ErrNotFound) {
		t.Fatalf("read %d bytes of an oversized sequence: %v", len(got), err)
	}
}

// Writers of the same sequences at once: exactly one wins each, every
// other is told ErrExists, and the stored bytes are the winner's.
func testConcurrentWriters(t *testing.T, b *backend) {
	const writers, seqs = 8, 20
	s := b.store
	won := make([][]int, seqs+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers*seqs)
	for w := range writers {
		wg.Go(func() {
			for seq := uint64(1); seq <= seqs; seq++ {
				err := s.Put(ctx, seq, blob(seq, w))
				switch {
				case err == nil:
					mu.Lock()
					won[seq] = append(won[seq], w)
					mu.Unlock()
				case !errors.Is(err, state.ErrExists):
					errs <- fmt.Errorf("writer %d, sequence %d: %w", w, seq, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for seq := uint64(1); seq <= seqs; seq++ {
		if len(won[seq]) != 1 {
			t.Errorf("sequence %d: winners %v, want exactly one", seq, won[seq])
			continue
		}
		got, err := s.Get(ctx, seq)
		if err != nil || !bytes.Equal(got, blob(seq, won[seq][0])) {
			t.Errorf("sequence %d holds %q, %v; the winner wrote %q", seq, got, err, blob(seq, won[seq][0]))
		}
	}
	if got, _ := s.List(ctx, 100); len(got) != seqs {
		t.Errorf("list = %v, want %d sequences", got, seqs)
	}
}

// blob is writer w's bytes for seq.
func blob(seq uint64, w int) []byte { return fmt.Appendf(nil, "sealed %d by writer %d", seq, w) }

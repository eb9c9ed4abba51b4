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

	"github.com/nitro-signer/nitro-signer/internal/hostproto"
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
	raw func(name string, b []byte) error
	// foreign are names in the store's place that are not its sequences.
	foreign []string
}

// foreignNames are not sequences in either store.
var foreignNames = []string{
	"keyring-1.sealed", "keyring-00000000000000000000.sealed", "keyring-x.sealed", "notes.txt",
	"keyring-00000000000000000005.sealed.bak", "keyring-+0000000000000000005.sealed",
	"keyring-0000000000000000005.sealed", "keyring-000000000000000000005.sealed",
	"keyring-00000000000000000005.SEALED", "KEYRING-00000000000000000005.sealed",
	"keyring-18446744073709551616.sealed", "keyring-99999999999999999999.sealed",
	// The S3 store's earlier names (newest first), two numbers each.
	fmt.Sprintf("keyring-%020d-%020d.sealed", uint64(math.MaxUint64-6), 6),
	fmt.Sprintf("keyring-%020d-%020d.sealed", uint64(math.MaxUint64), 0),
}

func dirBackend(t *testing.T) *backend {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &backend{
		store: s,
		raw: func(name string, b []byte) error {
			return os.WriteFile(filepath.Join(dir, name), b, 0o600)
		},
		foreign: foreignNames,
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
	if got := s.Key(3); got != prefix+state.Name(3) {
		t.Fatalf("sequence 3 is at %q", got)
	}
	client := srv.Client()
	return &backend{
		store: s,
		raw: func(name string, b []byte) error {
			_, err := client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(srv.Bucket), Key: aws.String(prefix + name), Body: bytes.NewReader(b),
			})
			return err
		},
		foreign: append(slices.Clone(foreignNames),
			// Deeper in the prefix, and beside it.
			"old/"+state.Name(6), "keyring-/"+state.Name(6)),
	}
}

// rawAll writes every name with b, a few at a time.
func (b *backend) rawAll(t *testing.T, names []string, data []byte) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	work := make(chan string)
	for range 16 {
		wg.Go(func() {
			for n := range work {
				if err := b.raw(n, data); err != nil {
					errs <- fmt.Errorf("write %s: %w", n, err)
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func (b *backend) putAll(t *testing.T, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		if err := b.store.Put(ctx, seq, blob(seq, 0)); err != nil {
			t.Fatalf("put %d: %v", seq, err)
		}
	}
}

// list is List that must succeed.
func list(t *testing.T, s state.Store, after uint64, max int) ([]uint64, bool) {
	t.Helper()
	seqs, more, err := s.List(ctx, after, max)
	if err != nil {
		t.Fatalf("list after %d, at most %d: %v", after, max, err)
	}
	if len(seqs) > max {
		t.Fatalf("list after %d, at most %d: %d sequences", after, max, len(seqs))
	}
	for i, seq := range seqs {
		if seq <= after || (i > 0 && seq <= seqs[i-1]) {
			t.Fatalf("list after %d = %v: not ascending above %d", after, seqs, after)
		}
	}
	return seqs, more
}

// listAll pages through the store after after, max at a time, as the
// enclave does.
func listAll(t *testing.T, s state.Store, after uint64, max int) (all []uint64, calls int) {
	t.Helper()
	for {
		seqs, more := list(t, s, after, max)
		calls++
		all = append(all, seqs...)
		if !more {
			return all, calls
		}
		if len(seqs) == 0 {
			t.Fatalf("list after %d: no sequence, yet more", after)
		}
		after = seqs[len(seqs)-1]
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
			t.Run("list_after", func(t *testing.T) { testListAfter(t, b.open(t)) })
			t.Run("bad_max", func(t *testing.T) { testBadMax(t, b.open(t)) })
			t.Run("bad_second_write", func(t *testing.T) { testSecondWrite(t, b.open(t)) })
			t.Run("bad_foreign_names", func(t *testing.T) { testForeignNames(t, b.open(t)) })
			t.Run("bad_foreign_pages_between", func(t *testing.T) { testForeignPages(t, b.open(t)) })
			t.Run("bad_high_sequences_hide_nothing", func(t *testing.T) { testHighSequences(t, b.open(t)) })
			t.Run("bad_sizes", func(t *testing.T) { testSizes(t, b.open(t)) })
			t.Run("bad_oversized_stored", func(t *testing.T) { testOversizedStored(t, b.open(t)) })
			t.Run("concurrent_writers", func(t *testing.T) { testConcurrentWriters(t, b.open(t)) })
		})
	}
}

func testPutGetList(t *testing.T, b *backend) {
	s := b.store
	if seqs, more := list(t, s, 0, 10); len(seqs) != 0 || more {
		t.Fatalf("new store lists %v, more %v", seqs, more)
	}
	// Out of order, with gaps, and the largest sequence there is.
	put := []uint64{3, 1, 10, 2, 11, 100, math.MaxUint64, 12}
	b.putAll(t, put...)
	all := slices.Sorted(slices.Values(put))
	for _, max := range []int{1, 3, len(all) - 1, len(all), len(all) + 1, 100} {
		seqs, more := list(t, s, 0, max)
		want := all[:min(max, len(all))]
		if !slices.Equal(seqs, want) || more != (max < len(all)) {
			t.Fatalf("list of at most %d = %v, more %v; want %v, more %v", max, seqs, more, want, max < len(all))
		}
	}
	for _, max := range []int{1, 2, 3, 100} {
		if got, _ := listAll(t, s, 0, max); !slices.Equal(got, all) {
			t.Fatalf("paged %d at a time: %v, want %v", max, got, all)
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

// List names only the sequences strictly above after.
func testListAfter(t *testing.T, b *backend) {
	put := []uint64{1, 2, 3, 10, 11, 1 << 40, math.MaxUint64 - 1, math.MaxUint64}
	b.putAll(t, put...)
	for _, after := range []uint64{0, 1, 2, 3, 4, 9, 10, 11, 12, 1<<40 - 1, 1 << 40, 1<<40 + 1, math.MaxUint64 - 2, math.MaxUint64 - 1, math.MaxUint64} {
		var want []uint64
		for _, seq := range put {
			if seq > after {
				want = append(want, seq)
			}
		}
		seqs, more := list(t, b.store, after, 100)
		if !slices.Equal(seqs, want) || more {
			t.Errorf("list after %d = %v, more %v; want %v", after, seqs, more, want)
		}
		if len(want) > 1 {
			if seqs, more := list(t, b.store, after, 1); !slices.Equal(seqs, want[:1]) || !more {
				t.Errorf("list after %d, at most 1 = %v, more %v; want %v, more", after, seqs, more, want[:1])
			}
		}
	}
}

func testBadMax(t *testing.T, b *backend) {
	b.putAll(t, 1)
	for _, max := range []int{0, -1} {
		if seqs, more, err := b.store.List(ctx, 0, max); err == nil {
			t.Errorf("list of at most %d = %v, more %v", max, seqs, more)
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
	if seqs, more := list(t, s, 0, 10); !slices.Equal(seqs, []uint64{7}) || more {
		t.Fatalf("list = %v, more %v", seqs, more)
	}
}

func testForeignNames(t *testing.T, b *backend) {
	s := b.store
	b.putAll(t, 4, 8)
	for _, name := range b.foreign {
		if err := b.raw(name, []byte("foreign")); err != nil {
			t.Fatal(err)
		}
	}
	// Names that sort between the store's own (and before and after
	// them), so a listing must skip them.
	for _, seq := range []uint64{3, 4, 8, 9} {
		if err := b.raw(state.Name(seq)+"x", []byte("foreign")); err != nil {
			t.Fatal(err)
		}
	}
	for _, max := range []int{1, 2, 10} {
		seqs, _ := list(t, s, 0, max)
		if want := []uint64{4, 8}[:min(max, 2)]; !slices.Equal(seqs, want) {
			t.Fatalf("list of at most %d = %v; want %v", max, seqs, want)
		}
	}
	if seqs, more := list(t, s, 0, 1); !more {
		t.Fatalf("list of at most 1 = %v, and no more", seqs)
	}
	if seqs, more := list(t, s, 0, 10); more {
		t.Fatalf("list of at most 10 = %v, and more", seqs)
	}
	if seqs, _ := list(t, s, 4, 10); !slices.Equal(seqs, []uint64{8}) {
		t.Fatalf("list after 4 = %v", seqs)
	}
	if seqs, more := list(t, s, 8, 10); len(seqs) != 0 || more {
		t.Fatalf("list after 8 = %v, more %v", seqs, more)
	}
	if got, _ := listAll(t, s, 0, 1); !slices.Equal(got, []uint64{4, 8}) {
		t.Fatalf("paged one at a time: %v", got)
	}
	for _, seq := range []uint64{5, 6} {
		if _, err := s.Get(ctx, seq); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("get %d (only foreign names hold it): %v", seq, err)
		}
	}
}

// Foreign names between the store's own, more than S3 lists in a page
// twice over: the listing pages past them (several S3 pages) and still
// finds every sequence, oldest first.
func testForeignPages(t *testing.T, b *backend) {
	b.putAll(t, 1, 2, 3)
	var names []string
	for i := range 2*state.MaxListPage + 10 {
		// Name(1) < Name(1).NNNNN < Name(2)
		names = append(names, fmt.Sprintf("%s.%05d", state.Name(1), i))
	}
	b.rawAll(t, names, []byte("foreign"))
	for _, c := range []struct {
		after uint64
		max   int
		want  []uint64
		more  bool
	}{
		{0, 10, []uint64{1, 2, 3}, false},
		{0, 1, []uint64{1}, true},
		{1, 1, []uint64{2}, true},
		{1, 10, []uint64{2, 3}, false},
		{2, 10, []uint64{3}, false},
	} {
		if seqs, more := list(t, b.store, c.after, c.max); !slices.Equal(seqs, c.want) || more != c.more {
			t.Errorf("list after %d, at most %d = %v, more %v; want %v, more %v", c.after, c.max, seqs, more, c.want, c.more)
		}
	}
	if got, _ := listAll(t, b.store, 0, 1); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("paged one at a time: %v", got)
	}
}

// The attack on a newest-first listing: whoever can write the store piles
// more sequences above the lineage than a listing returns. Listed oldest
// first after 0 they hide nothing: the first answer starts 1, 2, 3.
func testHighSequences(t *testing.T, b *backend) {
	const high = hostproto.MaxSequences + 10
	b.putAll(t, 1, 2, 3)
	var names []string
	var piled []uint64
	for i := range uint64(high) {
		seq := 1<<62 + i*7
		names, piled = append(names, state.Name(seq)), append(piled, seq)
	}
	b.rawAll(t, names, []byte("piled"))
	seqs, more := list(t, b.store, 0, hostproto.MaxSequences)
	if len(seqs) < 3 || !slices.Equal(seqs[:3], []uint64{1, 2, 3}) || !more {
		t.Fatalf("first listing after 0 starts %v (of %d), more %v; want 1, 2, 3 first, and more", seqs[:min(5, len(seqs))], len(seqs), more)
	}
	if len(seqs) != hostproto.MaxSequences || !slices.Equal(seqs[3:], piled[:hostproto.MaxSequences-3]) {
		t.Fatalf("first listing: %d sequences, want %d (1, 2, 3 and the lowest piled)", len(seqs), hostproto.MaxSequences)
	}
	if seqs, more := list(t, b.store, 0, 3); !slices.Equal(seqs, []uint64{1, 2, 3}) || !more {
		t.Fatalf("list of at most 3 = %v, more %v", seqs, more)
	}
	all, calls := listAll(t, b.store, 0, hostproto.MaxSequences)
	if want := append([]uint64{1, 2, 3}, piled...); !slices.Equal(all, want) || calls != 2 {
		t.Fatalf("paged: %d sequences in %d listings, want %d in 2", len(all), calls, len(want))
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
	if seqs, _ := list(t, s, 0, 10); len(seqs) != 0 {
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
	if err := b.raw(state.Name(1), make([]byte, state.MaxBlob+1)); err != nil {
		t.Fatal(err)
	}
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
	if got, more := list(t, s, 0, 100); len(got) != seqs || more {
		t.Errorf("list = %v, more %v; want %d sequences", got, more, seqs)
	}
}

// blob is writer w's bytes for seq.
func blob(seq uint64, w int) []byte { return fmt.Appendf(nil, "sealed %d by writer %d", seq, w) }

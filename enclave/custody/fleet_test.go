package custody_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
)

// fleet starts n replicas sharing one store and one sealer, the first
// holding an imported epoch 1 and the others having adopted it.
func fleet(t *testing.T, n int) (*world, *memStore, []*enclave) {
	t.Helper()
	w := newWorld(t)
	store := newMemStore()
	var out []*enclave
	for i := range n {
		e := w.start(t, opts{store: store.view()})
		if i == 0 {
			if err := e.importSecret(t, secretBytes(7)); err != nil {
				t.Fatal(err)
			}
		} else if err := e.c.Sync(context.Background()); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		out = append(out, e)
	}
	return w, store, out
}

func rotate(t *testing.T, e *enclave) (api.KeyringChange, error) {
	t.Helper()
	var r api.KeyringChange
	err := e.call(t, api.RotateKeys.Route, api.RotateKeysRequest{}, &r)
	return r, err
}

// sameKeys fails unless every replica holds the same epochs.
func sameKeys(t *testing.T, want uint32, es ...*enclave) {
	t.Helper()
	for i, e := range es {
		if got := e.keys.Current(); got != want {
			t.Fatalf("replica %d holds %d epochs, want %d", i, got, want)
		}
		for ep := uint32(1); ep <= want; ep++ {
			if a, b := address(t, e.keys, ep), address(t, es[0].keys, ep); a != b {
				t.Fatalf("replica %d's epoch %d is another secret: the fleet forked", i, ep)
			}
		}
	}
}

func TestFleetReplicaAdoptsAnotherReplicasRotation(t *testing.T) {
	_, _, rs := fleet(t, 3)
	if _, err := rotate(t, rs[0]); err != nil {
		t.Fatal(err)
	}
	for _, e := range rs[1:] {
		if st := e.c.Status(); st.Epoch != 1 {
			t.Fatalf("adopted before looking: %+v", st)
		}
		if err := e.c.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := e.c.Status(); st.Generation != 2 || st.NewestSequence != 2 || st.SequencesBehind != 0 {
			t.Fatalf("after sync: %+v", st)
		}
	}
	sameKeys(t, 2, rs...)
}

// Two replicas rotate at once: both computed generation 2 from epoch 1
// and both write the same sequence; the store lets one win. The loser
// discards its epoch, adopts the winner's and says so.
func TestFleetConcurrentRotationsLeaveOneEpoch(t *testing.T) {
	_, store, rs := fleet(t, 2)
	a, b := rs[0], rs[1]
	b.store.beforePut = func(seq uint64) {
		// b has sealed and is about to write seq: a's rotation lands first.
		if _, err := rotate(t, a); err != nil {
			t.Errorf("a's rotation: %v", err)
		}
	}
	_, err := rotate(t, b)
	if code(err) != api.CodeStateConflict {
		t.Fatalf("b's losing rotation: %v, want state_conflict", err)
	}
	if store.count() != 2 {
		t.Fatalf("the store holds %d sequences, want 2", store.count())
	}
	sameKeys(t, 2, a, b)
	// A retry is a new change on top of the winner, on both replicas.
	if r, err := rotate(t, b); err != nil || r.Epoch != 3 {
		t.Fatalf("retry: %+v, %v", r, err)
	}
	a.c.Sync(context.Background())
	sameKeys(t, 3, a, b)
}

// A replica behind the store that is asked to rotate adopts the newer
// generation instead and refuses the change as stale: it never writes a
// second generation 2.
func TestFleetRotationOnABehindReplicaAdoptsInstead(t *testing.T) {
	_, store, rs := fleet(t, 2)
	if _, err := rotate(t, rs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := rotate(t, rs[1]); code(err) != api.CodeStateConflict {
		t.Fatalf("rotation on the replica behind: %v, want state_conflict", err)
	}
	if store.count() != 2 {
		t.Fatalf("the store holds %d sequences, want 2", store.count())
	}
	sameKeys(t, 2, rs...)
}

// Two replicas import at once into an empty store: one wins sequence 1,
// the other adopts it.
func TestFleetConcurrentImportsKeepOneSecret(t *testing.T) {
	w := newWorld(t)
	store := newMemStore()
	a, b := w.start(t, opts{store: store.view()}), w.start(t, opts{store: store.view()})
	b.store.beforePut = func(uint64) {
		if err := a.importSecret(t, secretBytes(1)); err != nil {
			t.Errorf("a's import: %v", err)
		}
	}
	if err := b.importSecret(t, secretBytes(2)); code(err) != api.CodeStateConflict {
		t.Fatalf("b's losing import: %v, want state_conflict", err)
	}
	sameKeys(t, 1, a, b)
	if address(t, b.keys, 1) != expected(t, secretBytes(1)) {
		t.Fatal("b holds its own secret, not the winner's")
	}
}

// A parent that hides the newest sequences (from List and from Get) leaves
// its replica behind, never forked: the replica's rotation loses to the
// hidden sequence, it adopts nothing it cannot read, and it says it is
// behind once a caller names the newer epoch.
func TestFleetHidingParentLeavesReplicaBehindNotForked(t *testing.T) {
	_, _, rs := fleet(t, 2)
	a := rs[0]
	if _, err := rotate(t, a); err != nil {
		t.Fatal(err)
	}
	// b's parent lies from now on: same objects, sequence 2 hidden.
	b := rs[1]
	b.store.mu.Lock()
	b.store.hidden, b.store.hideGet = map[uint64]bool{2: true}, true
	b.store.mu.Unlock()
	if err := b.c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := b.c.Status(); st.Epoch != 1 || st.EpochsBehind != 0 {
		t.Fatalf("before any caller: %+v", st)
	}
	// A caller names epoch 2 (it got it from replica a).
	if _, err := b.keys.Derive(keyring.Wallet, 2, omni); err == nil {
		t.Fatal("derived an epoch the replica does not hold")
	}
	if st := b.c.Status(); st.EpochsBehind != 1 || !st.Ready {
		t.Fatalf("after a caller named epoch 2: %+v, want 1 epoch behind and still ready", st)
	}
	// b's rotation writes sequence 2, which the store holds (412): the
	// change is discarded, and the winner it cannot read is not adopted.
	if _, err := rotate(t, b); code(err) != api.CodeStateConflict {
		t.Fatalf("rotation behind a hidden sequence: %v, want state_conflict", err)
	}
	if b.keys.Current() != 1 {
		t.Fatalf("b holds %d epochs", b.keys.Current())
	}
	// Once its parent stops hiding, b converges to a's lineage.
	b.store.mu.Lock()
	b.store.hidden = nil
	b.store.mu.Unlock()
	if err := b.c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, 2, a, b)
	if st := b.c.Status(); st.EpochsBehind != 0 {
		t.Fatalf("caught up: %+v", st)
	}
}

// A newer sequence from another lineage (a keyring sealed for this signer
// that does not extend this one) is refused and counted, never adopted; a
// copy of an older generation stored as a newer sequence too.
func TestFleetRefusesDivergedAndOlderSequences(t *testing.T) {
	w, store, rs := fleet(t, 1)
	a := rs[0]
	if _, err := rotate(t, a); err != nil {
		t.Fatal(err)
	}
	// Another lineage, sealed with the same sealer for the same signer.
	other := w.start(t, opts{})
	other.importSecret(t, secretBytes(9))
	rotate(t, other)
	rotate(t, other)
	store.mu.Lock()
	store.blobs[3] = other.store.blobs[3] // generation 3 of secret 9's lineage
	store.blobs[4] = store.blobs[1]       // generation 1 again
	store.mu.Unlock()
	if err := a.c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := a.c.Status()
	if st.Generation != 2 || st.Epoch != 2 || st.RefusedSequences != 2 || st.NewestSequence != 4 {
		t.Fatalf("status: %+v, want generation 2 kept, 2 sequences refused", st)
	}
	// A change skips the refused sequences rather than waiting on them.
	if r, err := rotate(t, a); err != nil || r.Sequence != 5 || r.Generation != 3 {
		t.Fatalf("rotation past refused sequences: %+v, %v", r, err)
	}
}

// A newer sequence that cannot be read blocks every change: writing past
// it could fork the lineage if it holds the real next generation.
func TestFleetUnreadableNewerSequenceBlocksChanges(t *testing.T) {
	_, store, rs := fleet(t, 2)
	if _, err := rotate(t, rs[0]); err != nil {
		t.Fatal(err)
	}
	b := rs[1]
	// b's parent lists sequence 2 and will not serve it.
	b.store.mu.Lock()
	b.store.failGet = map[uint64]bool{2: true}
	b.store.mu.Unlock()
	if _, err := rotate(t, b); code(err) != api.CodeStateUnavailable {
		t.Fatalf("rotation behind an unreadable sequence: %v, want state_unavailable", err)
	}
	if st := b.c.Status(); st.SequencesBehind != 1 || st.Epoch != 1 {
		t.Fatalf("status: %+v, want 1 sequence behind", st)
	}
	if store.count() != 2 {
		t.Fatalf("the store holds %d sequences", store.count())
	}
}

// waitFor polls cond until it holds, failing after a generous deadline
// (a bound on a hang, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run adopts another replica's rotation on its interval, with no caller
// and no operator.
func TestFleetRunConvergesOnItsInterval(t *testing.T) {
	_, _, rs := fleet(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rs[1].c.Run(ctx, 100*time.Millisecond)
	if _, err := rotate(t, rs[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica 1 to adopt epoch 2", func() bool { return rs[1].keys.Current() == 2 })
	sameKeys(t, 2, rs...)
}

// With no interval, a caller naming an epoch the replica does not hold
// makes it look at the store.
func TestFleetRunLooksWhenACallerNamesANewerEpoch(t *testing.T) {
	_, _, rs := fleet(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rs[1].c.Run(ctx, 0)
	if _, err := rotate(t, rs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := rs[1].keys.Derive(keyring.Wallet, 2, omni); err == nil {
		t.Fatal("derived an epoch not held")
	}
	waitFor(t, "replica 1 to adopt epoch 2", func() bool { return rs[1].keys.Current() == 2 })
	sameKeys(t, 2, rs...)
}

// A new replica with an empty keyring and nothing but the store becomes
// ready on its own once another replica imports.
func TestFleetEmptyReplicaBecomesReadyFromTheStore(t *testing.T) {
	w := newWorld(t)
	store := newMemStore()
	a, b := w.start(t, opts{store: store.view()}), w.start(t, opts{store: store.view()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.c.Unseal(ctx); err == nil {
		t.Fatal("unsealed an empty store")
	}
	go b.c.Run(ctx, 100*time.Millisecond)
	if err := a.importSecret(t, secretBytes(5)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica b to become ready", func() bool { return b.c.Status().Ready })
	sameKeys(t, 1, a, b)
}

// A parent with write access to the store stores, as a newer sequence, a
// keyring that extends the fleet's older generation but not its newer one
// (sealed by a replica it forked). A replica still behind must reach the
// fleet's keyring, not the fork: the store is replayed oldest first, and
// the fork diverges from the generation before it.
func TestFleetForkStoredLaterIsNeverAdopted(t *testing.T) {
	w, store, rs := fleet(t, 2)
	a, b := rs[0], rs[1]
	// The forked replica: generation 1 of the fleet, then its own
	// rotation, sealed into a store of its own parent's.
	forked := w.start(t, opts{})
	store.mu.Lock()
	forked.store.blobs[1] = store.blobs[1]
	store.mu.Unlock()
	if err := forked.c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := rotate(t, forked); err != nil {
		t.Fatal(err)
	}
	// The fleet rotates; then the fork lands above it.
	if _, err := rotate(t, a); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.blobs[3] = forked.store.blobs[2]
	store.mu.Unlock()
	if err := b.c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, 2, a, b)
	if st := b.c.Status(); st.Sequence != 2 || st.RefusedSequences != 1 {
		t.Fatalf("status: %+v, want sequence 2 in use and the fork refused", st)
	}
	// A replica that starts empty reaches the same keyring.
	fresh := w.start(t, opts{store: store.view()})
	if err := fresh.c.Unseal(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, 2, a, b, fresh)
}

// countingSealer counts the data keys it unwraps (KMS Decrypt calls).
type countingSealer struct {
	seal.Sealer
	unwraps atomic.Int64
}

func (s *countingSealer) Unwrap(ctx context.Context, id string, w []byte) ([]byte, error) {
	s.unwraps.Add(1)
	return s.Sealer.Unwrap(ctx, id, w)
}

// syncAll looks at the store until a look reaches its end.
func syncAll(t *testing.T, e *enclave) {
	t.Helper()
	for range 100 {
		if err := e.c.Sync(context.Background()); err == nil {
			return
		}
	}
	t.Fatalf("the store never read to its end: %+v", e.c.Status())
}

// A writer of the bucket piles thousands of sequences above the lineage
// (copies of its oldest genuine keyring). The store is read oldest first
// from the sequence in use, so a replica starting empty still replays the
// lineage before them, and its next change is written right above the
// lineage, not above the pile.
func TestFleetSequencesPiledAboveTheLineageHideNothing(t *testing.T) {
	w, store, rs := fleet(t, 1)
	a := rs[0]
	for range 2 {
		if _, err := rotate(t, a); err != nil {
			t.Fatal(err)
		}
	}
	store.mu.Lock()
	for i := uint64(0); i < hostproto.MaxSequences+100; i++ {
		store.blobs[1_000_000+i] = bytes.Clone(store.blobs[1])
	}
	store.mu.Unlock()
	fresh := w.start(t, opts{store: store.view()})
	if err := fresh.c.Unseal(context.Background()); err == nil || fresh.keys.Current() != 3 {
		t.Fatalf("first look: %v, %+v; want the lineage's 3 epochs and more to read", err, fresh.c.Status())
	}
	sameKeys(t, 3, a, fresh)
	// Until the pile is read, no change: something in it could be newer.
	if _, err := rotate(t, fresh); code(err) != api.CodeStateUnavailable {
		t.Fatalf("rotation before the pile is read: %v", err)
	}
	syncAll(t, fresh)
	if st := fresh.c.Status(); st.RefusedSequences != hostproto.MaxSequences+100 || st.SequencesBehind != 0 {
		t.Fatalf("after reading the pile: %+v", st)
	}
	r, err := rotate(t, fresh)
	if err != nil || r.Sequence != 4 || r.Generation != 4 {
		t.Fatalf("rotation: %+v, %v; want sequence 4", r, err)
	}
	syncAll(t, a)
	sameKeys(t, 4, a, fresh)
}

// Refused sequences are read once: later looks, and a caller naming an
// epoch that does not exist once a second, cost no KMS call for them.
func TestFleetRefusedSequencesAreReadOnce(t *testing.T) {
	w := newWorld(t)
	cs := &countingSealer{Sealer: w.sealer}
	store := newMemStore()
	a := w.start(t, opts{store: store.view(), sealer: cs})
	if err := a.importSecret(t, secretBytes(7)); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	for i := uint64(2); i < 1002; i++ {
		store.blobs[i] = bytes.Clone(store.blobs[1])
	}
	store.mu.Unlock()
	syncAll(t, a)
	before := cs.unwraps.Load()
	for range 5 {
		if err := a.c.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.c.Run(ctx, 0)
	for range 20 {
		a.keys.Derive(keyring.Wallet, 200, omni) // an epoch that does not exist
	}
	waitFor(t, "Run to look at the store", func() bool {
		a.store.mu.Lock()
		defer a.store.mu.Unlock()
		return a.store.lists > 0
	})
	if n := cs.unwraps.Load() - before; n != 0 {
		t.Fatalf("%d KMS unwraps for sequences refused before", n)
	}
}

// A parent that stores a change and then says the write failed, or that
// the sequence was taken: the stored bytes are the enclave's own, so the
// change is made, and a caller told so does not repeat it.
func TestFleetAWriteThatLandedIsAChangeWhateverTheParentSays(t *testing.T) {
	for _, lie := range []error{host.ErrExists, &host.Error{Route: "state/put", Status: 507}} {
		_, _, rs := fleet(t, 1)
		a := rs[0]
		a.store.mu.Lock()
		a.store.lieAfterPut = lie
		a.store.mu.Unlock()
		r, err := rotate(t, a)
		if err != nil || r.Epoch != 2 || r.Sequence != 2 {
			t.Fatalf("parent answering %v after storing: %+v, %v", lie, r, err)
		}
	}
}

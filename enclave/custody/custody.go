// Package custody keeps the keyring over time: it unseals the newest usable
// sealed keyring at boot, and changes the keyring only by sealing the new
// state and storing it with the parent first — import of an existing master
// secret, rotation to a new epoch, and copying from an attested peer.
//
// Every change is serialized and follows one rule: the new keyring is sealed,
// written to the state store, read back and compared, and only then does the
// enclave use it. A store that cannot write refuses the change and the
// keyring stays as it was.
//
// Replicas that share a store keep one lineage by construction. A change
// first looks at the store and adopts anything newer (then it is refused
// as stale); it is then written as the lowest sequence above the loaded one
// that is not stored — every stored one in between having been read and
// refused (it does not open, is not newer, or diverges) — and the store
// writes a sequence only if it is not stored yet (S3's If-None-Match: *).
// Replicas that see the same store choose the same sequence, so of two
// changing the keyring at once exactly one wins. The other discards what it
// sealed, adopts the winner if it opens and extends its keyring, and
// answers state_conflict. A sequence that is stored but could not be read
// (KMS refusing, the parent not answering) blocks every change. Replicas converge by themselves (Run): each looks at the
// store on an interval, and when a caller names an epoch it does not hold,
// and adopts a newer generation that extends its keyring — never an older
// one, never a diverged one (refused, logged and counted in Status).
package custody

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
)

// Store is the parent's state store as the enclave sees it.
type Store interface {
	// List returns the stored sequences above after, oldest first, a page
	// at a time: more says the store has more after the last one.
	List(ctx context.Context, after uint64) (seqs []uint64, more bool, err error)
	// Get reads one sequence.
	Get(ctx context.Context, seq uint64) ([]byte, error)
	// Put stores b durably as seq, unless seq is stored already
	// (host.ErrExists).
	Put(ctx context.Context, seq uint64, b []byte) error
}

// Options build a Custody.
type Options struct {
	Keys     *keyring.Keyring
	SignerID string
	// Sealer and Store are both required for any change; without them the
	// keyring can only be what the platform loaded at start.
	Sealer seal.Sealer
	Store  Store
	// X25519 is the per-boot key bound into user_data: imports and peer
	// copies are encrypted to it.
	X25519 *ecdh.PrivateKey
	// Attest returns an attestation document with the enclave's current
	// user_data and the given nonce.
	Attest func(nonce []byte) ([]byte, error)
	// Signer is the per-boot response key, the public_key of every
	// document Attest returns: a peer copy's keyring is signed with it.
	Signer crypto.Signer
	// ConfigSHA256 is the enclave configuration's hash, as in user_data:
	// a peer must attest the same.
	ConfigSHA256 []byte
	// Random is the NSM's randomness, mixed into new epochs.
	Random io.Reader
	// Peers says which enclaves may exchange keyrings with this one.
	Peers  PeerPolicy
	Clock  func() time.Time
	Logger *slog.Logger
}

// PeerPolicy is what a peer's attestation must show: a document under one of
// Roots (nil means the AWS root), not in debug mode, whose PCR0, PCR1 and
// PCR2 equal this enclave's own (PCRs) or which matches one of Releases
// whole, inside its window.
type PeerPolicy struct {
	Roots []*x509.Certificate
	PCRs  map[int][]byte
	// Releases are the other images accepted as peers: the
	// configuration's peers (config.Config.PeerMeasurements).
	Releases []attestation.Measurement
}

// Custody keeps one keyring.
type Custody struct {
	o   Options
	log *slog.Logger

	// mu serializes every change of the keyring: the one change running
	// holds its token (lock, unlock). A change can wait on KMS for
	// seconds, so nothing that answers readiness takes it, and a change
	// waits for it only until its own deadline.
	mu chan struct{}

	// stateMu guards what api.KeyStatusResponse reports. gen and seq (the generation and
	// store sequence of the sealed keyring in use; zero when nothing is
	// sealed) are written only by setSealed, under both locks, so holders
	// of either may read them.
	stateMu  sync.Mutex
	gen, seq uint64
	reason   string // why the keyring is empty, for readiness
	// What the last look at the store found (unseal): the newest sequence
	// listed, the lowest one above seq not stored (where a change is
	// written), and how many listed sequences it did not get to examine
	// (pending: one that could not be read, or the look's bounds).
	newest, free uint64
	pending      int
	// refused are the sequences above seq examined and refused (they do
	// not open, are not newer, or diverge), with why: never read again.
	// An object is never replaced (the store writes a sequence once; the
	// bucket policy denies unconditional writes), so a refusal stands.
	refused map[uint64]string
	// want is the newest epoch a caller named that the keyring did not
	// hold: a claim of an authenticated caller, reported, never acted on
	// but by looking at the store.
	want uint32

	nudge chan struct{}
	peers *pending
}

// Bounds of one look at the store, and of what it remembers.
const (
	// maxRefused bounds the refusals remembered. Past it (a writer of the
	// bucket storing that many objects that cannot be adopted) refused
	// sequences are read again on every look, which then stops at
	// maxExamined and blocks every change until an operator removes them.
	maxRefused = 1 << 16
	// maxExamined bounds the sequences one look reads and opens (a KMS
	// round trip each); the next look goes on where it stopped.
	maxExamined = 256
	// maxListPages bounds the state/list calls of one look.
	maxListPages = 16
)

// New returns a Custody over o.Keys.
func New(o Options) *Custody {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Custody{o: o, log: logger, reason: "unsealing has not run", peers: newPending(o.Clock), mu: make(chan struct{}, 1),
		refused: map[uint64]string{}, nudge: make(chan struct{}, 1)}
	if o.Keys != nil {
		o.Keys.OnMiss(c.missed)
	}
	return c
}

// missed is told of every epoch a caller named that the keyring does not
// hold: another replica may have rotated. It wakes Run.
func (c *Custody) missed(epoch uint32) {
	if epoch > keyring.MaxEpoch {
		return
	}
	c.stateMu.Lock()
	c.want = max(c.want, epoch)
	c.stateMu.Unlock()
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// api.KeyStatusResponse reports the keyring's state.
func (c *Custody) Status() api.KeyStatusResponse {
	c.stateMu.Lock()
	s := api.KeyStatusResponse{Generation: c.gen, Sequence: c.seq, Reason: c.reason, Sealer: "none",
		Fleet: api.Fleet{NewestSequence: max(c.newest, c.seq), SequencesBehind: c.pending, RefusedSequences: len(c.refused)}}
	want := c.want
	c.stateMu.Unlock()
	s.Epoch = c.o.Keys.Current()
	if want > s.Epoch {
		s.EpochsBehind = want - s.Epoch
	}
	if c.o.Sealer != nil {
		s.Sealer = c.o.Sealer.Kind()
	}
	s.Ready = s.Epoch > 0
	if s.Ready {
		s.Reason = ""
	}
	return s
}

// setSealed records the sealed keyring in use. The caller holds c.mu.
func (c *Custody) setSealed(gen, seq uint64) {
	c.stateMu.Lock()
	c.gen, c.seq = gen, seq
	c.stateMu.Unlock()
}

func (c *Custody) setReason(format string, args ...any) {
	c.stateMu.Lock()
	c.reason = fmt.Sprintf(format, args...)
	c.stateMu.Unlock()
}

// ErrNoState: no sealed keyring is stored; the keyring stays empty until
// one is imported or copied from a peer.
var ErrNoState = errors.New("custody: no sealed keyring stored")

// lock waits for the keyring to be free to change, until ctx ends.
func (c *Custody) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err // a select would take a free token half the time
	}
	select {
	case c.mu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Custody) unlock() { <-c.mu }

// lockMethod is lock for a method: its refusal, when the deadline passes
// first, is a timeout.
func (c *Custody) lockMethod(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return api.Errorf(api.CodeTimeout, "the deadline passed while another keyring change was in progress")
	}
	return nil
}

// Unseal loads the newest sealed keyring that opens. A sequence that does
// not open (corrupt, truncated, sealed for another signer) is logged and
// skipped for the one before it, and stays in the store for inspection.
// It returns ErrNoState when the store is empty, and an error naming the
// cause when sealed keyrings exist but none could be opened — KMS refusing,
// say — in which case the caller retries.
func (c *Custody) Unseal(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	err := c.unseal(ctx)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoState):
		c.setReason("no sealed keyring: import a master secret or copy from a peer")
	default:
		c.setReason("unsealing failed: %s", describe(err))
	}
	return err
}

func (c *Custody) unseal(ctx context.Context) error {
	if c.o.Store == nil || c.o.Sealer == nil {
		return fmt.Errorf("%w: no state store or sealer configured", ErrNoState)
	}
	// The store is a log, replayed oldest first from the sequence in use:
	// each sequence is adopted if it opens, is newer and extends the
	// keyring as it stands after the ones before it. Every replica that
	// sees the same store so reaches the same keyring, and a keyring
	// stored later that diverges from an earlier one (another lineage,
	// written by a parent that forked its own replica) never is adopted,
	// however high its sequence. The replay runs on a copy, which the
	// keyring takes in one step: no caller sees a keyring halfway.
	var (
		held, gen, at = c.o.Keys.Snapshot(), c.gen, c.seq
		free          = at + 1 // the lowest sequence above at not seen stored
		newest        = c.newest
		after         = at
		adopted       = 0
		examined      = 0
		listed        = false
		first         error
	)
	finish := func(pending int) error {
		if adopted > 0 {
			if err := c.o.Keys.Extend(held); err != nil {
				return err
			}
			c.setSealed(gen, at)
			c.log.Info("keyring unsealed", "sequence", at, "generation", gen, "k3_epoch", len(held), "sequences_adopted", adopted)
		}
		c.stateMu.Lock()
		defer c.stateMu.Unlock()
		c.newest, c.free, c.pending = newest, free, pending
		for seq := range c.refused {
			if seq <= c.seq {
				delete(c.refused, seq)
			}
		}
		if c.want <= uint32(len(held)) {
			c.want = 0
		}
		return nil
	}
	for page := 0; ; page++ {
		if page == maxListPages {
			finish(1)
			return &stepError{"listing sealed keyrings", errLookBound}
		}
		seqs, more, err := c.o.Store.List(ctx, after)
		if err != nil {
			finish(max(c.pending, 1))
			return &stepError{"listing sealed keyrings", err}
		}
		listed = listed || len(seqs) > 0
		for i, seq := range seqs {
			newest = max(newest, seq)
			if seq == free {
				free++
			}
			after = seq
			if _, ok := c.refused[seq]; ok {
				continue
			}
			if examined == maxExamined {
				finish(len(seqs) - i)
				return &stepError{fmt.Sprintf("sequence %d", seq), errLookBound}
			}
			examined++
			b, err := c.o.Store.Get(ctx, seq)
			var k *seal.Keyring
			if err == nil {
				k, _, err = seal.Open(ctx, c.o.Sealer, c.o.SignerID, b)
			}
			if err != nil && !errors.Is(err, seal.ErrMalformed) && !errors.Is(err, seal.ErrMismatch) &&
				!errors.Is(err, seal.ErrWrappedKey) && !errors.Is(err, seal.ErrAuthentication) {
				// Unread, not refused: the parent did not serve it, or the
				// sealer itself failed (KMS refused or unreachable).
				// Nothing after it is adopted — it may be the lineage's
				// next generation — and every change waits until a later
				// look reads it.
				c.log.Error("a sealed keyring could not be read; the ones after it wait", "sequence", seq, "err", err)
				if ferr := finish(len(seqs) - i); ferr != nil {
					return &stepError{"adopting sealed keyrings", ferr}
				}
				return &stepError{fmt.Sprintf("sequence %d", seq), err}
			}
			switch {
			case err != nil:
				c.log.Error("sealed keyring unusable; skipped", "sequence", seq, "err", err)
				c.refuse(seq, "does not open: "+describe(err))
				if first == nil {
					first = &stepError{fmt.Sprintf("sequence %d", seq), err}
				}
			case k.Generation <= gen:
				c.log.Error("sealed keyring not newer than the one before it; skipped", "sequence", seq, "generation", k.Generation, "before", gen)
				c.refuse(seq, fmt.Sprintf("generation %d is not newer than %d", k.Generation, gen))
			default:
				if err := keyring.Extends(held, k.Epochs); err != nil {
					c.log.Error("sealed keyring does not extend the one before it; refused", "sequence", seq, "generation", k.Generation, "err", err)
					c.refuse(seq, fmt.Sprintf("generation %d diverges from this keyring", k.Generation))
					continue
				}
				held, gen, at = k.Epochs, k.Generation, seq
				free = max(free, seq+1)
				adopted++
			}
		}
		if !more {
			break
		}
		if len(seqs) == 0 {
			finish(max(c.pending, 1))
			return &stepError{"listing sealed keyrings", errEmptyPage}
		}
	}
	if err := finish(0); err != nil {
		return &stepError{"adopting sealed keyrings", err}
	}
	switch {
	case adopted > 0 || c.seq != 0:
		return nil // nothing newer, or only refused ones (Status counts them)
	case !listed:
		return ErrNoState
	case first == nil:
		// Every stored keyring was refused by an earlier look: say why,
		// in the words recorded then (the enclave's own).
		return &stepError{"no sealed keyring opens", c.refusedError()}
	}
	return &stepError{"no sealed keyring opens", first}
}

// Why a look at the store stopped early.
var (
	errLookBound = errors.New("more sealed keyrings than one look reads: the next look goes on")
	errEmptyPage = errors.New("the parent said more sequences remain and listed none")
)

// refusedError names the newest refused sequence and why it was refused.
func (c *Custody) refusedError() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	var seq uint64
	for s := range c.refused {
		seq = max(seq, s)
	}
	return &refusedSequence{seq: seq, why: c.refused[seq]}
}

// refusedSequence is a sequence refused by an earlier look; why is the
// enclave's own words (describe's, or the rule it broke).
type refusedSequence struct {
	seq uint64
	why string
}

func (e *refusedSequence) Error() string {
	return fmt.Sprintf("sequence %d %s (refused before)", e.seq, e.why)
}

// refuse records that seq, above the sequence in use, cannot be adopted.
// The caller holds c.mu.
func (c *Custody) refuse(seq uint64, why string) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if len(c.refused) < maxRefused {
		c.refused[seq] = why
	}
}

// Sync looks at the store and adopts the newest sealed keyring that opens
// and extends this one (Unseal, once keys are loaded).
func (c *Custody) Sync(ctx context.Context) error { return c.Unseal(ctx) }

// Run keeps the keyring converged with the store until ctx ends: it looks
// every interval, soon after a caller named an epoch the keyring does not
// hold (at most once a second), and with backoff from a second to a
// minute while sealed keyrings exist that could not be opened and the
// keyring is empty. An interval of 0 looks only when nudged or failing.
func (c *Custody) Run(ctx context.Context, interval time.Duration) {
	if !c.CanChange() {
		return
	}
	// The caller has just looked (Unseal at boot): wait first.
	delay := time.Second
	wait := interval
	if c.o.Keys.Current() == 0 {
		wait = delay
	}
	for {
		var tick <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			tick = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-c.nudge:
			if t != nil {
				t.Stop()
			}
			// Another replica may have rotated: look now, but not more
			// than once a second however often callers ask.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		err := c.Unseal(ctx)
		wait = interval
		switch {
		case errors.Is(err, errLookBound):
			wait = lookAgain // more to read: go on soon
		case err == nil || errors.Is(err, ErrNoState) || c.o.Keys.Current() > 0:
			delay = time.Second
		default:
			c.log.Warn("keyring not unsealed; retrying", "err", err, "in", delay)
			wait, delay = delay, min(2*delay, time.Minute)
		}
	}
}

// lookAgain is how soon Run reads on after a look stopped at its bounds.
const lookAgain = 100 * time.Millisecond

// commit seals next, stores it, reads it back and only then makes it the
// keyring. The caller holds c.mu.
func (c *Custody) commit(ctx context.Context, next *seal.Keyring) error {
	if c.o.Store == nil || c.o.Sealer == nil {
		return api.Errorf(api.CodeStateUnavailable, "no state store or sealer configured: the keyring cannot change")
	}
	if err := c.o.Keys.CheckExtends(next.Epochs); err != nil {
		return api.Errorf(api.CodeRollback, "%v", err)
	}
	b, err := seal.Seal(ctx, c.o.Sealer, c.o.SignerID, next, c.o.Clock())
	if err != nil {
		c.log.Error("sealing failed", "err", err)
		return api.Errorf(api.CodeStateUnavailable, "sealing failed: %s", describe(err))
	}
	seq, err := c.nextSequence(ctx)
	if err != nil {
		return err
	}
	err = c.o.Store.Put(ctx, seq, b)
	// What the parent answers about a write is only its word: whatever it
	// says, the stored bytes decide. They are this enclave's own (sealed
	// bytes never repeat between writers): the change is made, even if the
	// parent said the sequence was taken or the write failed.
	back, gerr := c.o.Store.Get(ctx, seq)
	switch {
	case gerr == nil && bytes.Equal(back, b):
	case errors.Is(err, host.ErrExists) || gerr == nil:
		// Another writer's bytes are there: it won the sequence.
		return c.lost(ctx, seq)
	case err != nil:
		c.log.Error("storing the sealed keyring failed", "sequence", seq, "err", err)
		return api.Errorf(api.CodeStateUnavailable, "storing the sealed keyring failed: %s", describe(err))
	default:
		c.log.Error("sealed keyring did not read back", "sequence", seq, "err", gerr)
		return api.Errorf(api.CodeStateUnavailable, "the stored keyring did not read back intact (sequence %d): whether it is stored is unknown; check keys status before changing again", seq)
	}
	if err := c.o.Keys.Extend(next.Epochs); err != nil {
		return api.Errorf(api.CodeRollback, "%v", err)
	}
	c.setSealed(next.Generation, seq)
	c.stateMu.Lock()
	c.newest, c.free = max(c.newest, seq), max(c.free, seq+1)
	c.stateMu.Unlock()
	c.log.Info("keyring sealed and in use", "sequence", seq, "generation", next.Generation, "k3_epoch", len(next.Epochs))
	return nil
}

// nextSequence looks at the store and returns the sequence a change is
// written as: the lowest above the loaded one that is not stored. It
// refuses the change when the store holds something newer that was adopted
// now (the change was computed from a keyring no longer current) or could
// not be read. The caller holds c.mu.
func (c *Custody) nextSequence(ctx context.Context) (uint64, error) {
	gen := c.gen
	err := c.unseal(ctx)
	switch {
	case c.gen != gen:
		return 0, api.Errorf(api.CodeStateConflict, "another replica's change is newer: this replica adopted generation %d (k3 epoch %d) and discarded this change; retry if it is still wanted",
			c.gen, c.o.Keys.Current())
	case err != nil && !errors.Is(err, ErrNoState):
		c.log.Error("looking at the store before a change failed", "err", err)
		return 0, api.Errorf(api.CodeStateUnavailable, "looking at the state store failed: %s", describe(err))
	case c.pending > 0:
		return 0, api.Errorf(api.CodeStateUnavailable, "the state store holds %d sequences newer than this keyring that could not be read yet: no change until they are", c.pending)
	case c.free <= c.seq:
		return 0, api.Errorf(api.CodeStateUnavailable, "no sequence is left in the state store")
	}
	return c.free, nil
}

// lost handles a change whose sequence another writer stored first: what
// this enclave sealed is discarded, and the store is replayed from the
// sequence in use — the winner is adopted if it opens, is newer and
// extends the keyring, and refused otherwise. Either way the caller is
// told state_conflict. The caller holds c.mu.
func (c *Custody) lost(ctx context.Context, seq uint64) error {
	c.log.Warn("another writer stored this sequence first; the change is discarded", "sequence", seq)
	gen := c.gen
	if err := c.unseal(ctx); err != nil && !errors.Is(err, ErrNoState) {
		c.log.Warn("looking at the store after losing a sequence failed", "err", err)
		return api.Errorf(api.CodeStateConflict, "sequence %d was stored by another writer first, and reading the store then failed (%s): this change was discarded", seq, describe(err))
	}
	if c.gen == gen {
		return api.Errorf(api.CodeStateConflict, "sequence %d was stored by another writer first with nothing this replica adopts (%s): this change was discarded; retry",
			seq, c.refusal(seq))
	}
	return api.Errorf(api.CodeStateConflict, "another replica's change won sequence %d: this change was discarded, and this replica now holds generation %d (k3 epoch %d); retry if the change is still wanted",
		seq, c.gen, c.o.Keys.Current())
}

// refusal says why seq was refused, or that it was not read.
func (c *Custody) refusal(seq uint64) string {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if why, ok := c.refused[seq]; ok {
		return why
	}
	return "not read"
}

// stepError names, in the enclave's own words, the step of unsealing that
// failed around its cause.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// sealFaults name the faults of a sealed keyring, most specific first.
var sealFaults = []struct {
	err  error
	text string
}{
	{seal.ErrMalformed, "malformed sealed keyring"},
	{seal.ErrMismatch, "sealed by another sealer or for another signer_id"},
	{seal.ErrWrappedKey, "the sealer says the wrapped data key is invalid"},
	{seal.ErrAuthentication, "sealed keyring failed authentication"},
	{seal.ErrUnwrap, "the sealer could not unwrap the data key"},
}

// describe names err for readiness and for answers the enclave signs, in
// the enclave's own words. Errors from outside carry text the enclave did
// not write — a host service's reply, a sealed file's header, KMS's message
// (which quotes principal names the parent's credentials choose) — and none
// of it is repeated: a failed call to the parent is named by route and
// status (host.Error), KMS's refusal by its error code, a sealed keyring's
// fault by the rule it broke, and anything else only as failed. The whole
// error goes to the enclave's log.
func describe(err error) string {
	var parts []string
	for e := err; ; {
		var st *stepError
		if !errors.As(e, &st) {
			break
		}
		parts = append(parts, st.step)
		e = st.err
	}
	var rs *refusedSequence
	if errors.As(err, &rs) {
		return strings.Join(append(parts, rs.Error()), ": ")
	}
	fault := false
	for _, f := range sealFaults {
		if errors.Is(err, f.err) {
			parts, fault = append(parts, f.text), true
			break
		}
	}
	var he *host.Error
	var api interface{ ErrorCode() string }
	switch {
	case errors.As(err, &he):
		parts = append(parts, he.Error())
	case errors.As(err, &api) && isErrorCode(api.ErrorCode()):
		parts = append(parts, "KMS answered "+api.ErrorCode())
	case errors.As(err, &api):
		parts = append(parts, "KMS refused")
	case errors.Is(err, context.DeadlineExceeded):
		parts = append(parts, "timed out")
	case !fault:
		parts = append(parts, "failed (the enclave's log has the cause)")
	}
	return strings.Join(parts, ": ")
}

// isErrorCode reports whether s looks like an AWS error code
// (AccessDeniedException): letters and digits only, at most 64.
func isErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// CanChange reports whether a sealer and a store are configured, so the
// keyring can be imported, rotated or copied.
func (c *Custody) CanChange() bool { return c.o.Store != nil && c.o.Sealer != nil }

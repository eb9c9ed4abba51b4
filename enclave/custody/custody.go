// Package custody keeps the keyring over time: it unseals the newest usable
// sealed keyring at boot, and changes the keyring only by sealing the new
// state and storing it with the parent first — import of an existing master
// secret, rotation to a new epoch, and copying from an attested peer.
//
// Every change is serialized and follows one rule: the new keyring is sealed,
// written to the state store, read back and compared, and only then does the
// enclave use it. A store that cannot write refuses the change and the
// keyring stays as it was.
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
	// List returns the stored sequences, newest first.
	List(ctx context.Context) ([]uint64, error)
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

	// mu serializes every change of the keyring. A change can wait on KMS
	// for seconds, so nothing that answers readiness takes it.
	mu sync.Mutex

	// stateMu guards what api.KeyStatusResponse reports. gen and seq (the generation and
	// store sequence of the sealed keyring in use; zero when nothing is
	// sealed) are written only by setSealed, under both locks, so holders
	// of either may read them.
	stateMu  sync.Mutex
	gen, seq uint64
	reason   string // why the keyring is empty, for readiness

	peers *pending
}

// New returns a Custody over o.Keys.
func New(o Options) *Custody {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Custody{o: o, log: logger, reason: "unsealing has not run", peers: newPending(o.Clock)}
}

// api.KeyStatusResponse reports the keyring's state.
func (c *Custody) Status() api.KeyStatusResponse {
	c.stateMu.Lock()
	s := api.KeyStatusResponse{Generation: c.gen, Sequence: c.seq, Reason: c.reason, Sealer: "none"}
	c.stateMu.Unlock()
	s.Epoch = c.o.Keys.Current()
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

// Unseal loads the newest sealed keyring that opens. A sequence that does
// not open (corrupt, truncated, sealed for another signer) is logged and
// skipped for the one before it, and stays in the store for inspection.
// It returns ErrNoState when the store is empty, and an error naming the
// cause when sealed keyrings exist but none could be opened — KMS refusing,
// say — in which case the caller retries.
func (c *Custody) Unseal(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	seqs, err := c.o.Store.List(ctx)
	if err != nil {
		return &stepError{"listing sealed keyrings", err}
	}
	if len(seqs) == 0 {
		return ErrNoState
	}
	var first error
	for _, seq := range seqs {
		if seq <= c.seq {
			break // nothing newer than what is loaded
		}
		b, err := c.o.Store.Get(ctx, seq)
		if err != nil {
			return &stepError{fmt.Sprintf("reading sequence %d", seq), err}
		}
		k, _, err := seal.Open(ctx, c.o.Sealer, c.o.SignerID, b)
		if errors.Is(err, seal.ErrUnwrap) {
			// The sealer itself failed (KMS refused or unreachable): older
			// sequences would fail the same way, and loading one would hide
			// this one's newer epochs. Retry later instead.
			c.log.Error("sealer failed; the keyring stays sealed", "sequence", seq, "err", err)
			return &stepError{fmt.Sprintf("sequence %d", seq), err}
		}
		if err != nil {
			c.log.Error("sealed keyring unusable; trying the one before it", "sequence", seq, "err", err)
			if first == nil {
				first = &stepError{fmt.Sprintf("sequence %d", seq), err}
			}
			continue
		}
		if k.Generation < c.gen {
			c.log.Error("sealed keyring older than the one loaded; ignored", "sequence", seq, "generation", k.Generation)
			continue
		}
		if err := c.o.Keys.Extend(k.Epochs); err != nil {
			c.log.Error("sealed keyring does not extend the one loaded; ignored", "sequence", seq, "err", err)
			continue
		}
		c.setSealed(k.Generation, seq)
		c.log.Info("keyring unsealed", "sequence", seq, "generation", k.Generation, "k3_epoch", len(k.Epochs))
		return nil
	}
	if first == nil {
		return nil
	}
	return &stepError{"no sealed keyring opens", first}
}

// Run unseals, then retries with backoff while the keyring is still empty
// and sealed keyrings exist that could not be opened, until ctx ends.
func (c *Custody) Run(ctx context.Context) {
	delay := time.Second
	for {
		err := c.Unseal(ctx)
		if err == nil || errors.Is(err, ErrNoState) || c.o.Keys.Current() > 0 {
			return
		}
		c.log.Warn("keyring not unsealed; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

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
	seqs, err := c.o.Store.List(ctx)
	if err != nil {
		return api.Errorf(api.CodeStateUnavailable, "listing the state store failed: %s", describe(err))
	}
	seq := uint64(1)
	if len(seqs) > 0 {
		seq = seqs[0] + 1
	}
	if err := c.o.Store.Put(ctx, seq, b); err != nil {
		c.log.Error("storing the sealed keyring failed", "err", err)
		return api.Errorf(api.CodeStateUnavailable, "storing the sealed keyring failed: %s", describe(err))
	}
	back, err := c.o.Store.Get(ctx, seq)
	if err != nil || !bytes.Equal(back, b) {
		c.log.Error("sealed keyring did not read back", "sequence", seq, "err", err)
		return api.Errorf(api.CodeStateUnavailable, "the stored keyring did not read back intact (sequence %d)", seq)
	}
	if err := c.o.Keys.Extend(next.Epochs); err != nil {
		return api.Errorf(api.CodeRollback, "%v", err)
	}
	c.setSealed(next.Generation, seq)
	c.log.Info("keyring sealed and in use", "sequence", seq, "generation", next.Generation, "k3_epoch", len(next.Epochs))
	return nil
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

// Package keyring holds the master secrets (K3, one per epoch) and derives
// the per-identity keys of DESIGN §5.1 from them.
//
// Secrets live in unexported fixed-size arrays, have no String, GoString or
// JSON form, and are compared in constant time. Derived private keys exist
// only for the duration of one operation; Go cannot promise that their
// memory is wiped afterwards, and this package does not claim it.
package keyring

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/bounded"
)

// SecretSize is the size of a master secret.
const SecretSize = api.SecretSize

// MaxEpoch is the largest epoch: the derivation encodes it as one byte.
const MaxEpoch = 255

// Secret is a 32-byte master secret.
type Secret struct {
	b [SecretSize]byte
}

// NewSecret copies b into a Secret; it must be exactly 32 bytes.
func NewSecret(b []byte) (*Secret, error) {
	if len(b) != SecretSize {
		return nil, errors.New("keyring: malformed secret")
	}
	s := &Secret{}
	copy(s.b[:], b)
	return s, nil
}

// Format prints a placeholder for every verb, so a secret that reaches a
// log line or an error by mistake prints nothing of itself.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, "keyring.Secret{redacted}") }

// Equal reports whether two secrets are equal, in constant time.
func (s *Secret) Equal(o *Secret) bool { return subtle.ConstantTimeCompare(s.b[:], o.b[:]) == 1 }

// Errors of the keyring.
var (
	// ErrEmpty: no epoch is loaded.
	ErrEmpty = errors.New("keyring: no keys loaded")
	// ErrUnknownEpoch: the keyring does not hold the epoch asked for.
	ErrUnknownEpoch = errors.New("keyring: unknown epoch")
)

// Keyring holds epochs 1..current.
type Keyring struct {
	mu     sync.RWMutex
	epochs []*Secret // epochs[i] is epoch i+1
	// cache maps derived keys to their public halves, so a request for an
	// identity seen before costs one derivation and one signature, not a
	// scalar multiplication as well.
	cache *bounded.Map[cacheKey, Public]
	// onMiss, if set, is told of every epoch asked for and not held.
	onMiss atomic.Pointer[func(epoch uint32)]
	// issuers are the OIDC issuer keys derived so far, by epoch: one per
	// epoch, never evicted (an epoch's secret never changes once held).
	issuersMu sync.Mutex
	issuers   map[uint32]*IssuerKey
}

// OnMiss sets f to be told of every epoch asked for that the keyring does
// not hold (another replica may have rotated). f must not block.
func (k *Keyring) OnMiss(f func(epoch uint32)) { k.onMiss.Store(&f) }

// New returns an empty keyring.
func New() *Keyring { return &Keyring{cache: bounded.New[cacheKey, Public](publicCacheEntries)} }

// Add appends the next epoch and returns its number.
func (k *Keyring) Add(s *Secret) (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.epochs) >= MaxEpoch {
		return 0, fmt.Errorf("keyring: already %d epochs", MaxEpoch)
	}
	c := *s
	k.epochs = append(k.epochs, &c)
	return uint32(len(k.epochs)), nil
}

// Current returns the newest epoch, or 0 when the keyring is empty.
func (k *Keyring) Current() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return uint32(len(k.epochs))
}

// secret returns epoch e's secret; e = 0 means the current epoch. An epoch
// not held is told to the miss hook after the lock is released.
func (k *Keyring) secret(e uint32) (*Secret, uint32, error) {
	s, e, err := k.lookup(e)
	if errors.Is(err, ErrUnknownEpoch) {
		if f := k.onMiss.Load(); f != nil {
			(*f)(e)
		}
	}
	return s, e, err
}

func (k *Keyring) lookup(e uint32) (*Secret, uint32, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.epochs) == 0 {
		return nil, 0, ErrEmpty
	}
	if e == 0 {
		e = uint32(len(k.epochs))
	}
	if e > uint32(len(k.epochs)) {
		return nil, e, fmt.Errorf("%w: %d (the keyring holds 1..%d)", ErrUnknownEpoch, e, len(k.epochs))
	}
	return k.epochs[e-1], e, nil
}

// Snapshot returns copies of every epoch's secret, epoch 1 first.
func (k *Keyring) Snapshot() []*Secret {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]*Secret, len(k.epochs))
	for i, s := range k.epochs {
		c := *s
		out[i] = &c
	}
	return out
}

// ErrDiverged: a keyring offered as a replacement does not start with the
// epochs this keyring already holds.
var ErrDiverged = errors.New("keyring: the offered keyring differs in an epoch this keyring holds")

// ErrRollback: a keyring offered as a replacement has fewer epochs.
var ErrRollback = errors.New("keyring: the offered keyring has fewer epochs")

// CheckExtends reports whether secrets could replace the keyring: at least
// as many epochs, and the same secret for every epoch already held.
func (k *Keyring) CheckExtends(secrets []*Secret) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.checkExtends(secrets)
}

func (k *Keyring) checkExtends(secrets []*Secret) error { return Extends(k.epochs, secrets) }

// Extends reports whether next could replace held: at least as many
// epochs (at most MaxEpoch), and the same secret for every epoch in held.
func Extends(held, next []*Secret) error {
	if len(next) > MaxEpoch {
		return fmt.Errorf("keyring: %d epochs (at most %d)", len(next), MaxEpoch)
	}
	if len(next) < len(held) {
		return fmt.Errorf("%w: %d, this keyring holds %d", ErrRollback, len(next), len(held))
	}
	for i, s := range held {
		if !s.Equal(next[i]) {
			return fmt.Errorf("%w: epoch %d", ErrDiverged, i+1)
		}
	}
	return nil
}

// Extend replaces the keyring by secrets after CheckExtends: epochs already
// held stay as they are, newer ones are appended.
func (k *Keyring) Extend(secrets []*Secret) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.checkExtends(secrets); err != nil {
		return err
	}
	for _, s := range secrets[len(k.epochs):] {
		c := *s
		k.epochs = append(k.epochs, &c)
	}
	return nil
}

// AppendSecrets appends the secrets' bytes, in order, to dst: the plaintext
// of a sealed keyring or a peer copy. The caller clears the result.
func AppendSecrets(dst []byte, secrets []*Secret) []byte {
	for _, s := range secrets {
		dst = append(dst, s.b[:]...)
	}
	return dst
}

// ErrSecrets: bytes that are not 1..MaxEpoch whole secrets.
var ErrSecrets = errors.New("keyring: not a whole number of secrets")

// SplitSecrets reverses AppendSecrets: b must hold 1..MaxEpoch secrets.
func SplitSecrets(b []byte) ([]*Secret, error) {
	if len(b) == 0 || len(b)%SecretSize != 0 || len(b)/SecretSize > MaxEpoch {
		return nil, ErrSecrets
	}
	out := make([]*Secret, 0, len(b)/SecretSize)
	for i := 0; i < len(b); i += SecretSize {
		s := &Secret{}
		copy(s.b[:], b[i:])
		out = append(out, s)
	}
	return out, nil
}

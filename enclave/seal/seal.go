// Package seal is the sealed keyring: the format the enclave writes to the
// parent's state store, and the Sealer interface that wraps its data keys
// (AWS KMS in production, a local key in development builds).
//
// A sealed keyring is
//
//	"NSKR" | version (1 byte) | header length (4 bytes, big endian) | header | ciphertext
//
// where header is a deterministic CBOR map (see Header) and ciphertext is
// AES-256-GCM under a fresh 32-byte data key, with the 12-byte nonce from the
// header and everything before the ciphertext as associated data. The
// plaintext is the epochs' secrets, 32 bytes each, epoch 1 first. The data
// key appears only wrapped, in the header; the sealer that wrapped it is the
// only way back to it.
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/internal/strictcbor"
)

// Format constants.
const (
	Magic   = "NSKR"
	Version = 1
	// MaxHeader bounds the header; a KMS ciphertext blob is under 512 bytes.
	MaxHeader = 4 << 10
	// MaxSize bounds a whole sealed keyring.
	MaxSize = len(Magic) + 1 + 4 + MaxHeader + keyring.MaxEpoch*keyring.SecretSize + gcmTag
	// DataKeySize is the size of a data key.
	DataKeySize = 32

	gcmTag   = 16
	gcmNonce = 12
	prefix   = len(Magic) + 1 + 4
)

// Sealer wraps and unwraps data keys. The signer_id is bound into the
// wrapping (KMS encryption context, or associated data), so a keyring sealed
// for one deployment does not open in another.
type Sealer interface {
	// Kind names the sealer in the header: "kms" or "dev".
	Kind() string
	// NewDataKey returns a fresh data key and its wrapped form.
	NewDataKey(ctx context.Context, signerID string) (key, wrapped []byte, err error)
	// Unwrap recovers a data key from its wrapped form.
	Unwrap(ctx context.Context, signerID string, wrapped []byte) ([]byte, error)
}

// Header is a sealed keyring's authenticated, unencrypted part.
type Header struct {
	Sealer   string `cbor:"1,keyasint"`
	SignerID string `cbor:"2,keyasint"`
	// Generation counts the keyring's changes: 1 when its first epoch was
	// created or imported, one more at every rotation. Replicas compare it
	// to refuse a rollback.
	Generation uint64 `cbor:"3,keyasint"`
	Epochs     uint32 `cbor:"4,keyasint"`
	WrappedKey []byte `cbor:"5,keyasint"`
	Nonce      []byte `cbor:"6,keyasint"`
	// SealedAt is the enclave's time at sealing (unix seconds), for
	// operators; nothing depends on it.
	SealedAt int64 `cbor:"7,keyasint"`
}

// Errors of opening a sealed keyring.
var (
	// ErrMalformed: the bytes are not a sealed keyring of this version.
	ErrMalformed = errors.New("seal: malformed sealed keyring")
	// ErrMismatch: the keyring was sealed by another sealer or for another
	// signer_id.
	ErrMismatch = errors.New("seal: sealed for another sealer or signer")
	// ErrUnwrap: the sealer could not recover the data key (KMS refused
	// or could not be reached): other sealed keyrings would fail alike.
	ErrUnwrap = errors.New("seal: data key could not be unwrapped")
	// ErrWrappedKey: the sealer says the wrapped data key itself is
	// invalid (corrupt, or not made by it). Sealers wrap it in their error;
	// Open reports it as ErrAuthentication, a fault of this file alone.
	ErrWrappedKey = errors.New("seal: the wrapped data key is invalid")
	// ErrAuthentication: the ciphertext or header was altered, or the data
	// key is not the one it was sealed under.
	ErrAuthentication = errors.New("seal: sealed keyring failed authentication")
)

// Keyring is what a sealed keyring holds.
type Keyring struct {
	Generation uint64
	Epochs     []*keyring.Secret
}

// Seal seals k with a fresh data key from s.
func Seal(ctx context.Context, s Sealer, signerID string, k *Keyring, now time.Time) ([]byte, error) {
	if len(k.Epochs) == 0 || len(k.Epochs) > keyring.MaxEpoch {
		return nil, fmt.Errorf("seal: %d epochs (1..%d)", len(k.Epochs), keyring.MaxEpoch)
	}
	if k.Generation == 0 {
		return nil, errors.New("seal: generation 0")
	}
	key, wrapped, err := s.NewDataKey(ctx, signerID)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	h := Header{
		Sealer: s.Kind(), SignerID: signerID, Generation: k.Generation, Epochs: uint32(len(k.Epochs)),
		WrappedKey: wrapped, Nonce: make([]byte, gcmNonce), SealedAt: now.Unix(),
	}
	rand.Read(h.Nonce)
	hb, err := strictcbor.Enc.Marshal(&h)
	if err != nil {
		return nil, err
	}
	if len(hb) > MaxHeader {
		return nil, fmt.Errorf("seal: header of %d bytes", len(hb))
	}
	out := make([]byte, 0, prefix+len(hb)+len(k.Epochs)*keyring.SecretSize+gcmTag)
	out = append(out, Magic...)
	out = append(out, Version)
	out = binary.BigEndian.AppendUint32(out, uint32(len(hb)))
	out = append(out, hb...)
	plain := keyring.AppendSecrets(make([]byte, 0, len(k.Epochs)*keyring.SecretSize), k.Epochs)
	defer clear(plain)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(out, h.Nonce, plain, out), nil
}

// ParseHeader checks a sealed keyring's structure and returns its header,
// without opening it.
func ParseHeader(b []byte) (*Header, error) {
	h, _, err := parse(b)
	return h, err
}

func parse(b []byte) (*Header, int, error) {
	if len(b) > MaxSize {
		return nil, 0, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if len(b) < prefix || string(b[:len(Magic)]) != Magic {
		return nil, 0, fmt.Errorf("%w: no magic", ErrMalformed)
	}
	if b[len(Magic)] != Version {
		return nil, 0, fmt.Errorf("%w: version %d", ErrMalformed, b[len(Magic)])
	}
	n := binary.BigEndian.Uint32(b[len(Magic)+1:])
	if n == 0 || n > MaxHeader || uint64(len(b)) < uint64(prefix)+uint64(n) {
		return nil, 0, fmt.Errorf("%w: header length %d", ErrMalformed, n)
	}
	end := prefix + int(n)
	var h Header
	if err := strictcbor.Dec.Unmarshal(b[prefix:end], &h); err != nil {
		return nil, 0, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	switch {
	case h.Sealer == "" || h.SignerID == "" || len(h.WrappedKey) == 0:
		return nil, 0, fmt.Errorf("%w: header field missing", ErrMalformed)
	case h.Generation == 0:
		return nil, 0, fmt.Errorf("%w: generation 0", ErrMalformed)
	case h.Epochs == 0 || h.Epochs > keyring.MaxEpoch:
		return nil, 0, fmt.Errorf("%w: %d epochs", ErrMalformed, h.Epochs)
	case len(h.Nonce) != gcmNonce:
		return nil, 0, fmt.Errorf("%w: nonce of %d bytes", ErrMalformed, len(h.Nonce))
	case len(b)-end != int(h.Epochs)*keyring.SecretSize+gcmTag:
		return nil, 0, fmt.Errorf("%w: ciphertext of %d bytes for %d epochs", ErrMalformed, len(b)-end, h.Epochs)
	}
	return &h, end, nil
}

// Open checks, unwraps and decrypts a sealed keyring.
func Open(ctx context.Context, s Sealer, signerID string, b []byte) (*Keyring, *Header, error) {
	h, end, err := parse(b)
	if err != nil {
		return nil, nil, err
	}
	if h.Sealer != s.Kind() || h.SignerID != signerID {
		return nil, h, fmt.Errorf("%w: sealed by %q for %q", ErrMismatch, h.Sealer, h.SignerID)
	}
	key, err := s.Unwrap(ctx, signerID, h.WrappedKey)
	if errors.Is(err, ErrWrappedKey) {
		return nil, h, fmt.Errorf("%w: %w", ErrAuthentication, err)
	}
	if err != nil {
		return nil, h, fmt.Errorf("%w: %w", ErrUnwrap, err)
	}
	defer clear(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, h, fmt.Errorf("%w: %w", ErrUnwrap, err)
	}
	plain, err := aead.Open(nil, h.Nonce, b[end:], b[:end])
	if err != nil {
		return nil, h, ErrAuthentication
	}
	defer clear(plain)
	epochs, err := keyring.SplitSecrets(plain)
	if err != nil {
		return nil, h, fmt.Errorf("%w: %v", ErrMalformed, err) // parse checked the length; unreachable
	}
	return &Keyring{Generation: h.Generation, Epochs: epochs}, h, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != DataKeySize {
		return nil, fmt.Errorf("seal: data key of %d bytes", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

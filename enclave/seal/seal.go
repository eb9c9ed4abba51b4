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
	"errors"
	"fmt"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/internal/sealfmt"
)

// Format constants (the format is internal/sealfmt's).
const (
	Magic     = sealfmt.Magic
	Version   = sealfmt.Version
	MaxHeader = sealfmt.MaxHeader
	// MaxSize bounds a whole sealed keyring.
	MaxSize = sealfmt.MaxSize
	// DataKeySize is the size of a data key.
	DataKeySize = 32

	gcmNonce = sealfmt.NonceSize
)

// The format's sizes are the keyring's: each difference below is a
// constant that must convert to uint, so the build fails unless both are 0.
const (
	_ = uint(sealfmt.SecretSize-keyring.SecretSize) + uint(keyring.SecretSize-sealfmt.SecretSize)
	_ = uint(sealfmt.MaxEpochs-keyring.MaxEpoch) + uint(keyring.MaxEpoch-sealfmt.MaxEpochs)
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
type Header = sealfmt.Header

// Errors of opening a sealed keyring.
var (
	// ErrMalformed: the bytes are not a sealed keyring of this version.
	ErrMalformed = sealfmt.ErrMalformed
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
	out, err := sealfmt.AppendHeader(make([]byte, 0, MaxHeader+len(k.Epochs)*keyring.SecretSize+sealfmt.TagSize), &h)
	if err != nil {
		return nil, err
	}
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
	h, _, err := sealfmt.Parse(b)
	return h, err
}

// Open checks, unwraps and decrypts a sealed keyring.
func Open(ctx context.Context, s Sealer, signerID string, b []byte) (*Keyring, *Header, error) {
	h, end, err := sealfmt.Parse(b)
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

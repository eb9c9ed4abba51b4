// Package devseal is the development sealer: data keys are wrapped under a
// local key file in the development state directory. Only development
// builds (-tags nsmsim) import it; a production enclave seals with KMS.
package devseal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/nitro-signer/nitro-signer/enclave/seal"
)

// KeyFile is the development sealing key's file name.
const KeyFile = "dev-seal.key"

const wrapInfo = "nitro-signer dev data key v1\x00"

// Sealer wraps data keys with AES-256-GCM under a local 32-byte key.
type Sealer struct {
	aead cipher.AEAD
}

var _ seal.Sealer = (*Sealer)(nil)

// Load reads the key file at path, creating it (mode 0600) when absent.
func Load(path string) (*Sealer, error) {
	key, err := LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return &Sealer{aead: aead}, nil
}

// LoadOrCreateKey reads a 32-byte development key stored as hex at path,
// creating it from crypto/rand (mode 0600) when absent. The caller clears
// the result. Errors never quote the file.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		b = []byte(hex.EncodeToString(key) + "\n")
		clear(key)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	defer clear(b)
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		clear(key)
		return nil, fmt.Errorf("%s: malformed key", path)
	}
	return key, nil
}

// Kind is "dev".
func (*Sealer) Kind() string { return "dev" }

// NewDataKey returns a random data key wrapped as nonce ‖ AES-GCM.
func (s *Sealer) NewDataKey(_ context.Context, signerID string) ([]byte, []byte, error) {
	key := make([]byte, seal.DataKeySize)
	rand.Read(key)
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return key, s.aead.Seal(nonce, nonce, key, []byte(wrapInfo+signerID)), nil
}

// Unwrap reverses NewDataKey.
func (s *Sealer) Unwrap(_ context.Context, signerID string, wrapped []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(wrapped) < n {
		return nil, fmt.Errorf("devseal: %w: too short", seal.ErrWrappedKey)
	}
	key, err := s.aead.Open(nil, wrapped[:n], wrapped[n:], []byte(wrapInfo+signerID))
	if err != nil {
		return nil, fmt.Errorf("devseal: %w: it does not open under this development key", seal.ErrWrappedKey)
	}
	return key, nil
}

// Format prints the kind only: the sealer holds the key's AES schedule,
// which fmt would print word by word.
func (*Sealer) Format(f fmt.State, _ rune) { io.WriteString(f, "devseal.Sealer{redacted}") }

// LogValue logs the kind only.
func (*Sealer) LogValue() slog.Value { return slog.GroupValue(slog.String("kind", "dev")) }

// MarshalJSON writes the kind only.
func (*Sealer) MarshalJSON() ([]byte, error) { return []byte(`{"kind":"dev"}`), nil }

// Package sealfmt is the sealed keyring's file format without the
// cryptography: the prefix, the header and the structural checks. The
// enclave's seal package writes and opens sealed keyrings with it;
// signerctl keys inspect reads their headers with it, without linking any
// enclave code.
//
// A sealed keyring is
//
//	"NSKR" | version (1 byte) | header length (4 bytes, big endian) | header | ciphertext
//
// where header is a deterministic CBOR map (see Header; Parse refuses any
// other encoding of the same map) and ciphertext is
// AES-256-GCM of the epochs' secrets, SecretSize bytes each, with the
// NonceSize-byte nonce from the header and everything before the
// ciphertext as associated data.
package sealfmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nitro-signer/nitro-signer/internal/strictcbor"
)

// Format constants.
const (
	Magic   = "NSKR"
	Version = 1
	// MaxHeader bounds the header; a KMS ciphertext blob is under 512 bytes.
	MaxHeader = 4 << 10
	// SecretSize is the size of one epoch's secret in the plaintext; the
	// seal package checks that it is the keyring's.
	SecretSize = 32
	// MaxEpochs bounds the epochs of a keyring; the seal package checks
	// that it is the keyring's.
	MaxEpochs = 255
	// NonceSize and TagSize are AES-GCM's.
	NonceSize = 12
	TagSize   = 16
	// MaxSize bounds a whole sealed keyring.
	MaxSize = prefix + MaxHeader + MaxEpochs*SecretSize + TagSize

	prefix = len(Magic) + 1 + 4
)

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

// ErrMalformed: the bytes are not a sealed keyring of this version. Its
// text names the seal package, which reported it before this package held
// the format.
var ErrMalformed = errors.New("seal: malformed sealed keyring")

// AppendHeader appends the prefix and the encoded header h to dst: what
// precedes the ciphertext, and its associated data.
func AppendHeader(dst []byte, h *Header) ([]byte, error) {
	hb, err := strictcbor.Enc.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(hb) > MaxHeader {
		return nil, fmt.Errorf("seal: header of %d bytes", len(hb))
	}
	dst = append(dst, Magic...)
	dst = append(dst, Version)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(hb)))
	return append(dst, hb...), nil
}

// Parse checks a sealed keyring's structure, down to the ciphertext's
// length for the header's epochs, and returns its header and where the
// ciphertext starts. It opens nothing. Every error wraps ErrMalformed.
func Parse(b []byte) (h *Header, ciphertext int, err error) {
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
	h = new(Header)
	if err := strictcbor.Dec.Unmarshal(b[prefix:end], h); err != nil {
		return nil, 0, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	// One header, one encoding: the decoder takes integers longer than
	// they need and keys in any order, AppendHeader writes neither, so
	// what it would not have written is not a sealed keyring (and two
	// files that differ in bytes differ in what they say).
	if again, err := strictcbor.Enc.Marshal(h); err != nil || !bytes.Equal(again, b[prefix:end]) {
		return nil, 0, fmt.Errorf("%w: header not in its deterministic encoding", ErrMalformed)
	}
	switch {
	case h.Sealer == "" || h.SignerID == "" || len(h.WrappedKey) == 0:
		return nil, 0, fmt.Errorf("%w: header field missing", ErrMalformed)
	case h.Generation == 0:
		return nil, 0, fmt.Errorf("%w: generation 0", ErrMalformed)
	case h.Epochs == 0 || h.Epochs > MaxEpochs:
		return nil, 0, fmt.Errorf("%w: %d epochs", ErrMalformed, h.Epochs)
	case len(h.Nonce) != NonceSize:
		return nil, 0, fmt.Errorf("%w: nonce of %d bytes", ErrMalformed, len(h.Nonce))
	case len(b)-end != int(h.Epochs)*SecretSize+TagSize:
		return nil, 0, fmt.Errorf("%w: ciphertext of %d bytes for %d epochs", ErrMalformed, len(b)-end, h.Epochs)
	}
	return h, end, nil
}

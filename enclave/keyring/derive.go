package keyring

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/common"
)

// Derivation constants of DESIGN §5.1, fixed by the calling system.
const (
	walletSalt  = "agentkeys-signer-v0"
	walletLabel = "agentkeys-evm-wallet"
	deviceLabel = "agentkeys-k10-device"
	kekSalt     = "agentkeys.kek-salt.v2"
	kekInfo     = "agentkeys.user.v1"
	// maxRetries bounds the retry byte; the chance of needing even one is
	// about 2^-128.
	maxRetries = 255
)

// testOnlyToScalar turns 32 bytes into a key, failing when they are not a
// valid secp256k1 scalar; tests replace it to exercise the retry rule.
var testOnlyToScalar = toScalar

// Omni is a 32-byte identity.
type Omni [32]byte

// ErrOmni: an omni is not 64 hex characters.
var ErrOmni = errors.New("omni must be 64 hex characters without 0x")

// ParseOmni parses 64 hex characters, either case, without a 0x prefix.
func ParseOmni(s string) (Omni, error) {
	var o Omni
	if len(s) != 64 || strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return o, ErrOmni
	}
	if _, err := hex.Decode(o[:], []byte(s)); err != nil {
		return o, ErrOmni
	}
	return o, nil
}

// String is the omni's lowercase hex.
func (o Omni) String() string { return hex.EncodeToString(o[:]) }

// Kind selects which secp256k1 key is derived.
type Kind int

const (
	// Wallet is the omni's EVM wallet (K4).
	Wallet Kind = iota
	// Device is the omni's delegate device key (K10).
	Device
)

// Key is a derived secp256k1 key and the epoch it was derived under. Its
// scalar is unexported; it signs with Sign and names itself by Address.
type Key struct {
	priv  *secp256k1.PrivateKey
	Epoch uint32
	// id and ring locate its public half in the keyring's cache.
	id   cacheKey
	ring *Keyring
}

// NewKey wraps a raw 32-byte secp256k1 scalar (tests and vectors).
func NewKey(scalar []byte) (*Key, error) {
	priv, err := toScalar(scalar)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv}, nil
}

// Public returns the key's public half: from the keyring's bounded cache
// when it has been computed before (a scalar multiplication otherwise).
func (k *Key) Public() Public {
	if k.ring != nil {
		if p, ok := k.ring.cache.Get(k.id); ok {
			return p
		}
	}
	p := newPublic(k.priv.PubKey())
	if k.ring != nil {
		k.ring.cache.Put(k.id, p)
	}
	return p
}

// Address is the key's Ethereum address.
func (k *Key) Address() common.Address { return k.Public().Address }

// Sign signs a 32-byte hash: RFC 6979 deterministic, low-S, 65 bytes
// r ‖ s ‖ v with v ∈ {0, 1}.
func (k *Key) Sign(hash []byte) ([]byte, error) {
	if len(hash) != 32 {
		return nil, fmt.Errorf("keyring: hash of %d bytes, want 32", len(hash))
	}
	compact := ecdsa.SignCompact(k.priv, hash, false) // [27+v] ‖ r ‖ s
	sig := make([]byte, 65)
	copy(sig, compact[1:])
	sig[64] = compact[0] - 27
	return sig, nil
}

// Derive derives the omni's key of the given kind under epoch e (0: current).
func (k *Keyring) Derive(kind Kind, e uint32, o Omni) (*Key, error) {
	s, e, err := k.secret(e)
	if err != nil {
		return nil, err
	}
	label := walletLabel
	if kind == Device {
		label = deviceLabel
	}
	priv, err := deriveSecp256k1(s, e, label, o)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, Epoch: e, id: cacheKey{kind: byte(kind), epoch: byte(e), omni: o}, ring: k}, nil
}

// deriveSecp256k1: HKDF-SHA256(IKM = K3_v[e], salt = "agentkeys-signer-v0",
// info = byte(e) ‖ label ‖ o [‖ r]), 32 bytes; if that is not a valid scalar,
// retry with r = 1, 2, … appended to info.
func deriveSecp256k1(s *Secret, e uint32, label string, o Omni) (*secp256k1.PrivateKey, error) {
	info := make([]byte, 0, 1+len(label)+len(o)+1)
	info = append(info, byte(e))
	info = append(info, label...)
	info = append(info, o[:]...)
	base := len(info)
	for r := 0; r <= maxRetries; r++ {
		info = info[:base]
		if r > 0 {
			info = append(info, byte(r))
		}
		okm, err := hkdf.Key(sha256.New, s.b[:], []byte(walletSalt), string(info), 32)
		if err != nil {
			return nil, fmt.Errorf("keyring: hkdf: %w", err)
		}
		priv, err := testOnlyToScalar(okm)
		clear(okm)
		if err == nil {
			return priv, nil
		}
	}
	return nil, errors.New("keyring: no valid scalar after every retry")
}

// toScalar accepts 32 bytes that are a valid secp256k1 scalar: 0 < d < n.
func toScalar(b []byte) (*secp256k1.PrivateKey, error) {
	var d secp256k1.ModNScalar
	if len(b) != 32 || d.SetByteSlice(b) || d.IsZero() {
		return nil, errors.New("keyring: not a valid secp256k1 scalar")
	}
	return secp256k1.NewPrivateKey(&d), nil
}

// KEK derives the omni's 32-byte credential KEK under epoch e (0: current):
// HKDF-SHA256(IKM = K3_v[e], salt = "agentkeys.kek-salt.v2",
// info = "agentkeys.user.v1" ‖ o). The caller must clear it when done.
func (k *Keyring) KEK(e uint32, o Omni) ([]byte, uint32, error) {
	s, e, err := k.secret(e)
	if err != nil {
		return nil, 0, err
	}
	okm, err := hkdf.Key(sha256.New, s.b[:], []byte(kekSalt), kekInfo+string(o[:]), 32)
	if err != nil {
		return nil, 0, fmt.Errorf("keyring: hkdf: %w", err)
	}
	return okm, e, nil
}

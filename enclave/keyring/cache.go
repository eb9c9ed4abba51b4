package keyring

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// publicCacheEntries bounds the cache of derived public keys. An entry is
// about 130 bytes, so the cache stays under 10 MiB.
const publicCacheEntries = 1 << 16

// Public is the public half of a derived key. It is not secret.
type Public struct {
	// Uncompressed is 0x04 ‖ X ‖ Y.
	Uncompressed [65]byte
	Address      common.Address
}

func newPublic(pub *secp256k1.PublicKey) Public {
	var p Public
	copy(p.Uncompressed[:], pub.SerializeUncompressed())
	copy(p.Address[:], crypto.Keccak256(p.Uncompressed[1:])[12:])
	return p
}

type cacheKey struct {
	kind  byte
	epoch byte
	omni  Omni
}

package keyring

import (
	"sync"

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

// publicCache maps derived keys to their public halves, so a signing request
// for an identity seen before costs one derivation and one signature, not a
// scalar multiplication as well. When full, an arbitrary half is dropped.
type publicCache struct {
	mu sync.RWMutex
	m  map[cacheKey]Public
}

func (c *publicCache) get(k cacheKey) (Public, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.m[k]
	return p, ok
}

func (c *publicCache) put(k cacheKey, p Public) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[cacheKey]Public)
	}
	if len(c.m) >= publicCacheEntries {
		n := 0
		for old := range c.m {
			delete(c.m, old)
			if n++; n >= publicCacheEntries/2 {
				break
			}
		}
	}
	c.m[k] = p
}

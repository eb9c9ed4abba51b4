package envelope

import (
	"time"

	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// Bounds on envelopes.
const (
	// MaxRequest bounds a request JWS.
	MaxRequest = 128 << 10
	// MaxResponse bounds a response JWS.
	MaxResponse = 256 << 10
	// MaxJSONDepth bounds nesting in any JSON the envelope carries.
	MaxJSONDepth = strictjson.MaxDepth
	// MinNonce and MaxNonce bound the request nonce (decoded bytes).
	MinNonce = 16
	MaxNonce = 64
	// MaxMethod bounds the method name.
	MaxMethod = 96
	// DefaultWindow is the default replay window: |iat - now| ≤ window.
	DefaultWindow = 60 * time.Second
	// DefaultReplayEntries bounds the nonces remembered per generation (two
	// generations of 2·window each are kept). Entries take about 36 bytes
	// each (8-byte keys in a Go map), and only requests that passed every
	// other check take one, so what the cache holds is bounded by the
	// enclave's throughput: 5,400 req/s (the most a 2-core host served)
	// fills at most 650,000 per generation. docs/operations.md has the
	// sizing.
	DefaultReplayEntries = 1 << 22
	// chainCacheEntries bounds verified caller chains kept.
	chainCacheEntries = 1024
)

package envelope

import "time"

// Bounds on envelopes.
const (
	// MaxRequest bounds a request JWS.
	MaxRequest = 128 << 10
	// MaxResponse bounds a response JWS.
	MaxResponse = 256 << 10
	// MaxJSONDepth bounds nesting in any JSON the envelope carries.
	MaxJSONDepth = 16
	// MinNonce and MaxNonce bound the request nonce (decoded bytes).
	MinNonce = 16
	MaxNonce = 64
	// MaxMethod bounds the method name.
	MaxMethod = 96
	// DefaultWindow is the default replay window: |iat - now| ≤ window.
	DefaultWindow = 60 * time.Second
	// DefaultReplayEntries bounds the nonces remembered per generation (two
	// generations of 2·window each are kept). A generation must hold every
	// request of 2·window seconds: the default sustains about 8,700 req/s
	// with a 60 s window, in about 16 MiB per full generation (8-byte keys;
	// docs/operations.md has the sizing).
	DefaultReplayEntries = 1 << 20
	// DefaultReplayShare is the default share of a generation one caller
	// (certificate) may fill: half, so that no single caller can refuse
	// the others, and one caller still sustains about 4,300 req/s.
	DefaultReplayShare = DefaultReplayEntries / 2
	// chainCacheEntries bounds verified caller chains kept.
	chainCacheEntries = 1024
)

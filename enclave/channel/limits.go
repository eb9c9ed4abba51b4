package channel

import "time"

// Bounds of the protocol. Both ends enforce them.
const (
	// MaxFrame bounds one frame's CBOR bytes.
	MaxFrame = 1 << 20
	// MaxBody bounds a call's or reply's body (the envelope bytes).
	MaxBody = 256 << 10
	// MaxChain bounds the forwarded certificate chain.
	MaxChain = 8
	// MaxCertificate bounds one certificate of the chain.
	MaxCertificate = 8 << 10
	// MaxRoute bounds the route name.
	MaxRoute = 128
	// MaxCallTimeout bounds the deadline a call may ask for.
	MaxCallTimeout = 60 * time.Second
	// DefaultInFlight is how many calls one connection may have open at the
	// enclave at once.
	DefaultInFlight = 256
	// DefaultPoolSize is how many connections the parent keeps open.
	DefaultPoolSize = 4
	// writeTimeout bounds one frame write to a peer that stopped reading.
	writeTimeout = 10 * time.Second
	// reconnect backoff bounds.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

package channel

import "time"

// Bounds of the protocol. Both ends enforce them.
const (
	// MaxBody bounds a call's or reply's body (the envelope bytes).
	MaxBody = 256 << 10
	// MaxChain bounds the forwarded certificate chain.
	MaxChain = 8
	// MaxCertificate bounds one certificate of the chain.
	MaxCertificate = 8 << 10
	// MaxRoute bounds the route name.
	MaxRoute = 128
	// MaxFrame bounds one frame's CBOR bytes: the largest frame Validate
	// admits (body, chain and route at their bounds, each byte string with
	// a head of at most 5 bytes) and 64 bytes for the map, the keys and the
	// integer fields. TestLargestFrameFits holds it to that.
	MaxFrame = MaxBody + 5 + MaxChain*(MaxCertificate+5) + MaxRoute + 5 + 64
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

// Bounds of what a peer can make a server hold. A connection holds its
// reader's buffer (firstBuffer until it has read a frame, readBuffer when
// idle after one, for a larger frame at most growth times its bytes that
// have arrived so far and never more than bigBuffer), a goroutine and, once it has
// carried a call, a writer with its goroutine and 64 KiB buffer: under
// 400 KiB. With DefaultMaxConns connections each stalled one byte short of
// the largest frame that is about 25 MiB, for at most DefaultFrameTimeout at
// a time; with a few bytes of a frame each, under 1 MiB. (The calls a
// connection has in flight are bounded apart: Server.InFlight.)
const (
	// DefaultMaxConns is how many connections a server keeps open at once
	// (Server.MaxConns). A newcomer beyond it closes the connection least
	// worth keeping: the oldest that never completed a frame or is stalled
	// in one, else the one idle longest. It is well above the parent's pool
	// (DefaultPoolSize), which must stay below it.
	DefaultMaxConns = 64
	// MaxConns bounds Server.MaxConns: at it, connections stalled in the
	// largest frames hold about 100 MiB.
	MaxConns = 256
	// DefaultFrameTimeout bounds how long a frame may take to arrive once
	// its first byte has (Server.FrameTimeout). A peer writes a frame in one
	// go, so this only has to cover a descheduled or collecting peer; a
	// connection idle between frames has no deadline.
	DefaultFrameTimeout = 5 * time.Second
	// readBuffer is a connection reader's buffer: several calls of the
	// usual size at a time, and the step its buffer grows by at first.
	readBuffer = 32 << 10
	// firstBuffer is a connection reader's buffer until it has read a
	// frame: what a connection that never completes one holds.
	firstBuffer = 1 << 10
	// midBuffer and bigBuffer are the buffers a reader grows into, from
	// readBuffer, when a frame does not fit: each at most growth times the
	// one before, so a reader never holds more than growth times the bytes
	// of the frame that came, and bigBuffer holds the largest frame. They
	// are pooled, given back once the frame is read.
	midBuffer = growth * readBuffer
	bigBuffer = MaxFrame + 4
	// growth bounds the factor a reader's buffer grows by at once (beyond
	// readBuffer, which every connection that read a frame has).
	growth = 4
	// min and maxAcceptBackoff bound the wait before accepting again after the
	// process ran out of file descriptors.
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

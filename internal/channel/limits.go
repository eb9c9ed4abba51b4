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
	// MaxInFlight bounds InFlight, at each end.
	MaxInFlight = 65536
	// DefaultPoolSize is how many connections the parent keeps open.
	DefaultPoolSize = 4
	// DefaultAnswerGrace is how long past a call's deadline a client waits
	// for the server's answer, on a connection that has read nothing for
	// as long, before it takes the connection for stuck and closes it
	// (ClientOptions.AnswerGrace). A server answers a call whose deadline
	// passed while it waited at once (Expired), and the enclave's handlers
	// stop at their deadlines, so this only has to cover a descheduled or
	// collecting server; a connection answering other calls is never
	// closed for one late answer.
	DefaultAnswerGrace = 5 * time.Second
	// WriteTimeout bounds a batch of frames written to a peer: one that has
	// not been written within it (the peer stopped reading, or reads too
	// slowly to keep up) closes the connection.
	WriteTimeout = 10 * time.Second
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
// connection has in flight are bounded apart: by Server.MaxHeldBytes.)
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

// Bounds of what the calls a peer sends can make a server hold. A call read
// holds its bytes (body, chain and route) until its handler returns, then
// its reply's until the reply is written; its bytes count against the
// server's budget from the moment it is read. Calls are refused once that
// budget is spent, or once a connection has its InFlight calls whose
// replies are not yet written, or once MaxDedicated calls run on dedicated
// routes: such a call is answered Overloaded at once and not run. The
// refusals a connection has queued are bounded by its InFlight too; beyond
// them its reader waits, which holds its peer back. So whatever a peer sends
// and however slowly it reads, what its calls hold is the budget, a frame
// each over it for the replies of the calls admitted, and an Overloaded
// reply for each refusal queued.
const (
	// DefaultMaxHeldBytes is the server's budget of bytes held by calls
	// read and not yet answered (Server.MaxHeldBytes): about twenty-five of
	// the largest calls, thousands of the usual size (a few KiB with their
	// chain; the parent's pool has at most DefaultPoolSize*DefaultInFlight
	// in flight). It is a sixth of the enclave's 48 MiB heap limit: the
	// heap also holds what the calls running allocate, and what the
	// collector has yet to free of those refused and answered.
	DefaultMaxHeldBytes = 8 << 20
	// DefaultMaxDedicated bounds the calls on dedicated routes that run at
	// once, each on its goroutine (Server.MaxDedicated). Unlike a call
	// waiting for a worker, a call running works on its bytes: the enclave
	// decoding the largest request uses a few times its size, so sixteen
	// of them are about 20 MiB. The dedicated routes are the key methods,
	// an operator's, run a few at a time.
	DefaultMaxDedicated = 16
)

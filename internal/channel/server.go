package channel

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/recovered"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

// Call is a call as the enclave receives it.
type Call struct {
	Route string
	Body  []byte
	Chain [][]byte
}

// Reply is the enclave's answer to a call.
type Reply struct {
	Status int
	Body   []byte
}

// Handler answers calls. It must not retain call after returning.
type Handler interface {
	Handle(ctx context.Context, call *Call) Reply
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, call *Call) Reply

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, call *Call) Reply { return f(ctx, call) }

// Server serves calls on accepted connections (the enclave side).
type Server struct {
	Handler Handler
	// InFlight bounds the calls per connection whose replies are not yet
	// written; beyond it a call is answered Overloaded at once. Zero means
	// DefaultInFlight.
	InFlight int
	// Workers bounds how many calls run at once across all connections;
	// the others wait their turn in arrival order, their deadlines running.
	// Zero means one per CPU (runtime.NumCPU).
	Workers int
	// Dedicated, if set, names the routes whose calls may wait on something
	// other than the CPU (a KMS round trip, a file): they run on goroutines
	// of their own, outside the Workers bound, so they cannot hold up the
	// calls that only compute.
	Dedicated func(route string) bool
	// MaxConns bounds the connections open at once; a newcomer beyond it
	// closes the one least worth keeping (see DefaultMaxConns). Zero means
	// DefaultMaxConns; it is at most MaxConns.
	MaxConns int
	// FrameTimeout bounds how long a frame may take to arrive once its
	// first byte has; a connection idle between frames has no deadline.
	// Zero means DefaultFrameTimeout.
	FrameTimeout time.Duration
	// MaxHeldBytes bounds the bytes held by calls read and not yet
	// answered, across all connections: their bodies, chains and routes
	// until their handlers return, then their replies until written. A call
	// beyond it is answered Overloaded at once and not run. Zero means
	// DefaultMaxHeldBytes; it is at least MaxFrame.
	MaxHeldBytes int64
	// MaxDedicated bounds the calls on dedicated routes running at once; a
	// call beyond it is answered Overloaded at once and not run. Zero means
	// DefaultMaxDedicated.
	MaxDedicated int
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger

	wg        sync.WaitGroup
	queue     chan func()
	held      atomic.Int64 // bytes held by calls and replies not yet written
	dedicated atomic.Int64 // calls running on dedicated routes
}

// Calls that only compute run on a fixed set of workers, one per CPU by
// default, rather than a goroutine each. With hundreds of calls in flight,
// a goroutine each would interleave hundreds of stacks on two CPUs, each
// grown deep by the cryptography and cold in the cache when its turn
// comes; a few workers keep their stacks grown and warm, and the calls
// waiting are just closures in a queue.

// queueDepth bounds the calls waiting for a worker across all connections;
// beyond it a connection's reader waits, which holds its peer back.
const queueDepth = 4 * DefaultInFlight

func (s *Server) startWorkers() (stop func()) {
	n := s.Workers
	if n <= 0 {
		// The CPUs, not GOMAXPROCS: internal/procs lowers that below
		// saturation, and the workers must be there when it rises.
		n = runtime.NumCPU()
	}
	s.queue = make(chan func(), queueDepth)
	var running sync.WaitGroup
	for range n {
		running.Add(1)
		go func() {
			defer running.Done()
			for f := range s.queue {
				f()
			}
		}()
	}
	return func() {
		close(s.queue)
		running.Wait()
	}
}

// Overloaded is the reply to a call refused because the connection has too
// many calls in flight, the server holds its budget of bytes for calls, or
// too many calls run on dedicated routes. It is not signed: the enclave did
// not look at the call.
var Overloaded = ErrorReply(api.CodeOverloaded, "enclave connection has too many calls in flight")

// Expired is the reply body for a call whose deadline passed while it waited
// for a worker: the enclave answers at once rather than spend a worker on a
// call its caller has given up on. Like Overloaded it is not signed.
var Expired = ErrorReply(api.CodeTimeout, "the call's deadline passed while it waited for a worker")

// Internal is the reply to a call whose handler panicked. It is not signed:
// the handler that could sign did not return.
var Internal = ErrorReply(api.CodeInternal, "the call failed inside the enclave")

// unframable is the reply to a call whose reply could not be framed.
var unframable = ErrorReply(api.CodeInternal, "reply could not be framed")

// ErrorReply is an unsigned error reply: the code's status and the API's
// error body.
func ErrorReply(code api.Code, message string) Reply {
	b, err := json.Marshal(api.ErrorBody{Error: code, Message: message})
	if err != nil {
		panic(err) // a struct of two strings always encodes
	}
	return Reply{Status: code.Status(), Body: b}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Serve accepts connections until ctx ends or the listener fails, then waits
// for the calls in flight to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	logger := s.logger()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.startWorkers()()
	conns := newConnSet(s.MaxConns)
	frameTimeout := s.FrameTimeout
	if frameTimeout <= 0 {
		frameTimeout = DefaultFrameTimeout
	}
	backoff := time.Duration(0)
	var evicted int
	var reported time.Time
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && outOfFiles(err) {
				// Out of descriptors (the cap is above what the process
				// may open): wait for some to close rather than stop.
				backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
				logger.Warn("channel accept failed, retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				continue
			}
			conns.closeAll()
			s.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		backoff = 0
		c := &tracked{conn: conn, fr: NewFrameReader(conn, frameTimeout), accepted: activity.Add(1)}
		if conns.add(c) {
			evicted++
			if time.Since(reported) > time.Second {
				logger.Warn("channel connections at their cap: closed the least active", "max_conns", conns.max, "closed", evicted)
				evicted, reported = 0, time.Now()
			}
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conns.remove(c)
			if err := s.serveConn(ctx, c); err != nil && !errors.Is(err, net.ErrClosed) {
				logger.Warn("channel connection closed", "err", err)
			}
		}()
	}
}

// outOfFiles reports an accept error that passes once connections close.
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// tracked is an accepted connection and what the server knows of it.
type tracked struct {
	conn     net.Conn
	fr       *FrameReader
	accepted int64 // on the clock of activity
}

// rank orders connections for closing, least worth keeping first: those
// that never completed a frame or are stalled in one (class 0), oldest
// first, then those idle between frames (class 1), idle longest first (in
// accepts since; ties are broken by the map's order). A
// peer that holds connections open without using them, or with frames it
// never finishes, loses them to a newcomer before a pool connection that
// carries calls does.
func (c *tracked) rank() (class int, at int64) {
	last := c.fr.last.Load()
	if last == 0 {
		return 0, c.accepted
	}
	if stalled := c.fr.stalled.Load(); stalled != 0 {
		return 0, stalled
	}
	return 1, last
}

// connSet is the server's open connections, at most max.
type connSet struct {
	max  int
	mu   sync.Mutex
	open map[*tracked]struct{}
}

func newConnSet(max int) *connSet {
	if max <= 0 {
		max = DefaultMaxConns
	}
	return &connSet{max: min(max, MaxConns), open: map[*tracked]struct{}{}}
}

// add admits c; if the set was full it first closes the connection least
// worth keeping, and reports so. A newcomer always gets in: a parent that
// restarted must reach the enclave whatever its predecessor left open.
func (cs *connSet) add(c *tracked) (evicted bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.open) >= cs.max {
		var victim *tracked
		var vClass int
		var vAt int64
		for o := range cs.open {
			class, at := o.rank()
			if victim == nil || class < vClass || class == vClass && at < vAt {
				victim, vClass, vAt = o, class, at
			}
		}
		delete(cs.open, victim)
		victim.conn.Close()
		evicted = true
	}
	cs.open[c] = struct{}{}
	return evicted
}

func (cs *connSet) remove(c *tracked) {
	cs.mu.Lock()
	delete(cs.open, c)
	cs.mu.Unlock()
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.open {
		c.conn.Close()
	}
}

func (s *Server) serveConn(ctx context.Context, c *tracked) error {
	conn := c.conn
	defer conn.Close()
	limit := s.InFlight
	if limit <= 0 {
		limit = DefaultInFlight
	}
	maxHeld := s.MaxHeldBytes
	if maxHeld <= 0 {
		maxHeld = DefaultMaxHeldBytes
	}
	// However small the budget, a server with nothing held admits any call.
	maxHeld = max(maxHeld, MaxFrame)
	maxDedicated := int64(s.MaxDedicated)
	if maxDedicated <= 0 {
		maxDedicated = DefaultMaxDedicated
	}
	// A slot of sem is a call admitted whose reply is not yet written, a
	// slot of refusals an Overloaded reply not yet written; the writer
	// gives them back. With its queue as deep as both, a handler never
	// waits to queue its reply, so a peer that stops reading holds up its
	// own calls and no worker.
	sem := make(chan struct{}, limit)
	refusals := make(chan struct{}, limit)
	// The writer starts with the first frame: a connection that never
	// completes one costs its reader alone.
	var w *batchWriter
	var calls sync.WaitGroup
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	defer calls.Wait()
	// refuse answers a call Overloaded; it waits while the connection has
	// limit refusals not yet written.
	refuse := func(id uint64) error {
		select {
		case refusals <- struct{}{}:
		case <-w.dead:
			return net.ErrClosed
		}
		b, _ := AppendFrame(make([]byte, 0, len(Overloaded.Body)+32), &Frame{Type: TypeReply, ID: id, Status: uint16(Overloaded.Status), Body: Overloaded.Body})
		w.send(outFrame{b: b, slot: refusals})
		return nil
	}
	// admit takes a slot of sem and the frame's bytes of the budget, or
	// refuses the frame: a frame refused here is not even decoded.
	var reserved int64
	admit := func(size int) bool {
		select {
		case sem <- struct{}{}:
		default:
			return false
		}
		if s.held.Add(int64(size)) > maxHeld {
			s.held.Add(-int64(size))
			<-sem
			return false
		}
		reserved = int64(size)
		return true
	}
	for {
		reserved = 0
		f, refused, err := c.fr.readCall(admit)
		if err != nil {
			if reserved != 0 {
				s.held.Add(-reserved)
				<-sem
			}
			return err
		}
		if w == nil {
			// The replies' writer does not yield: at one P the goroutine
			// ready to run is usually a worker with the next call, and a
			// reply would wait for its cryptography (measured: +0.5 ms
			// at the median at half load). The workers batch replies
			// at saturation anyway.
			w = newBatchWriter(conn, 2*limit, &s.held, false)
		}
		if f == nil {
			if err := refuse(refused); err != nil {
				return err
			}
			continue
		}
		n := reserved
		dedicated := s.Dedicated != nil && s.Dedicated(f.Route)
		if dedicated && s.dedicated.Add(1) > maxDedicated {
			s.dedicated.Add(-1)
			s.held.Add(-n)
			<-sem
			if err := refuse(f.ID); err != nil {
				return err
			}
			continue
		}
		timeout := time.Duration(f.TimeoutMS) * time.Millisecond
		if timeout <= 0 || timeout > MaxCallTimeout {
			timeout = MaxCallTimeout
		}
		// The deadline runs from arrival: time spent waiting for a worker
		// counts against it.
		deadline := time.Now().Add(timeout)
		calls.Add(1)
		run := func() {
			defer calls.Done()
			r := s.answer(ctx, f, deadline)
			b, err := AppendFrame(make([]byte, 0, len(r.Body)+32), &Frame{Type: TypeReply, ID: f.ID, Status: uint16(r.Status), Body: r.Body})
			if err != nil {
				b, _ = AppendFrame(nil, &Frame{Type: TypeReply, ID: f.ID, Status: uint16(unframable.Status), Body: unframable.Body})
			}
			// The call is done with: its bytes are given back, its
			// reply's held until the writer has written it (or dropped
			// it with the connection).
			s.held.Add(int64(len(b)) - n)
			w.send(outFrame{b: b, held: int64(len(b)), slot: sem})
			if dedicated {
				s.dedicated.Add(-1)
			}
		}
		if dedicated {
			go run()
		} else {
			s.queue <- run
		}
	}
}

// answer runs the handler on the call of f, unless its deadline has passed.
func (s *Server) answer(ctx context.Context, f *Frame, deadline time.Time) (r Reply) {
	// The last resort: a handler that panics must not end the process
	// (and with it the keyring and the replay cache). The answer is
	// unsigned; the enclave's server recovers first and signs its own.
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("channel call panicked", "route", text.Truncate(f.Route), "panic", recovered.Value(v), "stack", recovered.Stack())
			r = Internal
		}
	}()
	if !time.Now().Before(deadline) {
		return Expired
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return s.Handler.Handle(cctx, &Call{Route: f.Route, Body: f.Body, Chain: f.Chain})
}

// HeldBytes reports the bytes the server holds for calls read and not yet
// answered and for replies not yet written: what Server.MaxHeldBytes
// bounds.
func (s *Server) HeldBytes() int64 { return s.held.Load() }

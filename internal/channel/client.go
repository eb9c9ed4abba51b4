package channel

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable: no connection to the enclave is up, or it broke while the
// call was in flight.
var ErrUnavailable = errors.New("channel: enclave unavailable")

// ClientOptions configure a Client.
type ClientOptions struct {
	// PoolSize is the number of connections; zero means DefaultPoolSize.
	PoolSize int
	// InFlight bounds calls in flight per connection; zero means
	// DefaultInFlight. Keep it at the enclave's limits.in_flight: calls
	// fill a connection up to it before the next is used, and the enclave
	// answers a call beyond its own limit overloaded.
	InFlight int
	// AnswerGrace is how long past a call's deadline the peer may take to
	// answer it; zero means DefaultAnswerGrace. A server answers a call
	// whose deadline passed while it waited at once (Expired), so a
	// connection that has a call unanswered that long past its deadline,
	// and has read nothing for as long, is stuck or hostile: it is closed
	// and redialled, and the slots its unanswered calls held are given
	// back. One that is still answering other calls is not: a handler may
	// finish late (one waiting on a lock its deadline does not bound).
	AnswerGrace time.Duration
	// OnOverdue, if set, is told whenever a connection is closed for a
	// call unanswered AnswerGrace past its deadline.
	OnOverdue func()
	// OnState is told whenever the number of live connections changes.
	OnState func(live int)
}

// Client is the parent's side: a pool of connections to the enclave, each
// redialled with backoff whenever it breaks.
type Client struct {
	addr  Addr
	opts  ClientOptions
	slots []*slot
	next  atomic.Uint64
	ids   atomic.Uint64
	live  atomic.Int64
	// overdue counts the connections closed for a call unanswered past
	// its deadline and the grace.
	overdue atomic.Uint64
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// slot is one pooled connection.
type slot struct {
	mu   sync.Mutex
	conn net.Conn
	w    *batchWriter
	// pending are the calls sent on the connection now up and not yet
	// answered; a nil channel marks a call its caller gave up on, whose
	// place in sem is given back when the enclave answers it.
	pending map[uint64]chan Reply
	// watch holds, for each call given up on and still pending, the timer
	// that looks at the connection once the call's answer is overdue.
	watch map[uint64]*time.Timer
	sem   chan struct{}
	// answered counts the replies to pending calls read on the
	// connection up: closeIfSilent compares it across a grace.
	answered atomic.Uint64
	// carried: the connection now up has been given a call.
	carried bool
}

// spreadEvery: one call in this many goes round robin instead of to the
// first connection with room, so every pooled connection keeps carrying
// calls while the parent does (see pick).
const spreadEvery = 16

// NewClient starts maintaining a pool of connections to addr. Close stops it.
func NewClient(addr Addr, opts ClientOptions) *Client {
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize
	}
	if opts.InFlight <= 0 {
		opts.InFlight = DefaultInFlight
	}
	if opts.AnswerGrace <= 0 {
		opts.AnswerGrace = DefaultAnswerGrace
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{addr: addr, opts: opts, cancel: cancel}
	for range opts.PoolSize {
		s := &slot{sem: make(chan struct{}, opts.InFlight)}
		c.slots = append(c.slots, s)
		c.done.Add(1)
		go c.maintain(ctx, s)
	}
	return c
}

// Live returns how many pooled connections are up.
func (c *Client) Live() int { return int(c.live.Load()) }

// InFlight returns how many of the pool's InFlight slots are taken: the
// calls sent, or about to be, whose replies have not been read.
func (c *Client) InFlight() int {
	n := 0
	for _, s := range c.slots {
		n += len(s.sem)
	}
	return n
}

// Overdue returns how many connections the client has closed because a
// call on them went unanswered AnswerGrace past its deadline.
func (c *Client) Overdue() uint64 { return c.overdue.Load() }

// Close closes every connection and fails the calls in flight.
func (c *Client) Close() {
	c.cancel()
	for _, s := range c.slots {
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.mu.Unlock()
	}
	c.done.Wait()
}

func (c *Client) maintain(ctx context.Context, s *slot) {
	defer c.done.Done()
	backoff := minBackoff
	for ctx.Err() == nil {
		conn, err := Dial(ctx, c.addr)
		if err != nil {
			sleep := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(sleep):
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = minBackoff
		s.mu.Lock()
		// The calls' writer yields before each batch: below saturation
		// the parent runs at one P, and its handlers' calls would
		// otherwise go one write each.
		s.conn, s.w, s.pending = conn, newBatchWriter(conn, c.opts.InFlight, nil, true), map[uint64]chan Reply{}
		s.watch = map[uint64]*time.Timer{}
		s.carried = false
		s.mu.Unlock()
		c.changed(+1)
		c.read(s, conn)
		c.changed(-1)
		s.mu.Lock()
		for id, ch := range s.pending {
			if ch == nil {
				<-s.sem // given up on: nobody else gives its place back
			} else {
				close(ch)
			}
			delete(s.pending, id)
		}
		for _, t := range s.watch {
			t.Stop()
		}
		s.watch = nil
		s.w.stop()
		s.conn, s.w = nil, nil
		s.mu.Unlock()
		conn.Close()
	}
}

func (c *Client) changed(delta int64) {
	n := c.live.Add(delta)
	if c.opts.OnState != nil {
		c.opts.OnState(int(n))
	}
}

// read delivers replies until the connection fails or the enclave breaks
// the protocol.
func (c *Client) read(s *slot, conn net.Conn) {
	// The same reader as the enclave's: the enclave is trusted, but a
	// reply that stalls halfway fails the connection, not the pool.
	r := NewFrameReader(conn, DefaultFrameTimeout)
	for {
		f, err := r.ReadFrame()
		if err != nil || f.Type != TypeReply {
			return
		}
		s.mu.Lock()
		ch, ok := s.pending[f.ID]
		delete(s.pending, f.ID)
		if t := s.watch[f.ID]; t != nil {
			t.Stop()
			delete(s.watch, f.ID)
		}
		s.mu.Unlock()
		if !ok {
			// A reply to no call sent on this connection, or a second
			// to one: the peer breaks the protocol. Taken for activity
			// it would keep a connection that answers nothing open
			// (closeIfSilent).
			return
		}
		s.answered.Add(1)
		if ch == nil {
			<-s.sem // its caller gave up on it; the enclave has let it go now
		} else {
			ch <- Reply{Status: int(f.Status), Body: f.Body}
		}
	}
}

// Call sends a call and waits for its reply, until ctx ends. The deadline of
// ctx travels with the call so the enclave stops working on it too: what
// remains of it once the call has a slot, at most MaxCallTimeout. A call
// with less than a millisecond left is not sent. A caller whose deadline
// is later than MaxCallTimeout and AnswerGrace from now, or who set none,
// waits that long at most, for a slot and the answer together.
func (c *Client) Call(ctx context.Context, call *Call) (Reply, error) {
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > MaxCallTimeout+c.opts.AnswerGrace {
		// The enclave answers by the deadline the call carries, at most
		// MaxCallTimeout: nobody waits longer than that and the grace,
		// the wait for a slot included.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, MaxCallTimeout+c.opts.AnswerGrace)
		defer cancel()
	} else if time.Until(d) < time.Millisecond {
		return Reply{}, context.DeadlineExceeded
	}
	s, taken, err := c.pick()
	if err != nil {
		return Reply{}, err
	}
	if !taken {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return Reply{}, ctx.Err()
		}
	}
	// The place taken in sem is given back when the call is over at both
	// ends: here, unless the caller gives up while the enclave still has
	// the call; then when the enclave answers it, or the connection breaks.
	abandoned := false
	defer func() {
		if !abandoned {
			<-s.sem
		}
	}()
	d, _ := ctx.Deadline() // there is one now
	timeout := min(time.Until(d), MaxCallTimeout)
	if timeout < time.Millisecond { // sent as 0, it would read as no deadline
		return Reply{}, context.DeadlineExceeded
	}
	id := c.ids.Add(1)
	frame, err := AppendFrame(make([]byte, 0, len(call.Body)+256), &Frame{
		Type: TypeCall, ID: id, Route: call.Route, Body: call.Body, Chain: call.Chain,
		TimeoutMS: uint32(timeout / time.Millisecond),
	})
	if err != nil {
		return Reply{}, err
	}
	ch := make(chan Reply, 1)
	s.mu.Lock()
	if s.conn == nil {
		s.mu.Unlock()
		return Reply{}, ErrUnavailable
	}
	s.pending[id] = ch
	s.carried = true
	w, conn := s.w, s.conn
	s.mu.Unlock()
	due := d // the deadline the call carries, or MaxCallTimeout from now
	if timeout == MaxCallTimeout {
		due = time.Now().Add(MaxCallTimeout)
	}
	due = due.Add(c.opts.AnswerGrace)
	// The slot's semaphore bounds the calls in flight to the writer's
	// depth, so this blocks only when a peer answers calls whose frames
	// are still queued (it can predict their ids) while it stops reading:
	// then until the call's deadline, or until the writer gives up on the
	// peer. A stopped writer means the connection broke.
	if !w.sendWithin(ctx.Done(), outFrame{b: frame}) {
		s.mu.Lock()
		delete(s.pending, id) // never sent, or its connection is gone
		s.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return Reply{}, err
		}
		return Reply{}, ErrUnavailable
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return Reply{}, ErrUnavailable
		}
		return r, nil
	case <-ctx.Done():
		// The enclave answers every call it is sent, and holds one of
		// its own InFlight places for it until then, whether or not its
		// caller still waits. Counted free here, those places would be
		// given to other callers' calls, which the enclave would then
		// refuse overloaded on this connection while others had room.
		s.mu.Lock()
		if _, ok := s.pending[id]; ok && s.conn == conn {
			s.pending[id] = nil
			abandoned = true
			// A server answers a call that waited past its deadline at
			// once. A connection with this one unanswered the grace
			// past it and silent as long is stuck, or kept silent on
			// purpose to hold the slots: it goes, and with it what its
			// unanswered calls hold.
			seen := s.answered.Load()
			s.watch[id] = time.AfterFunc(time.Until(due), func() { c.closeIfSilent(s, conn, id, seen) })
		}
		s.mu.Unlock()
		return Reply{}, ctx.Err()
	}
}

// closeIfSilent closes conn if it is still s's connection, the call id on it
// is still unanswered, and no call has been answered on it since the
// answered count was seen (when the call was given up on, at least
// AnswerGrace before); if one has, it looks again AnswerGrace later.
func (c *Client) closeIfSilent(s *slot, conn net.Conn, id, seen uint64) {
	s.mu.Lock()
	_, unanswered := s.pending[id]
	if !unanswered || s.conn != conn {
		s.mu.Unlock()
		return
	}
	if now := s.answered.Load(); now != seen {
		s.watch[id] = time.AfterFunc(c.opts.AnswerGrace, func() { c.closeIfSilent(s, conn, id, now) })
		s.mu.Unlock()
		return
	}
	delete(s.watch, id)
	c.overdue.Add(1)
	conn.Close() // the reader fails; maintain gives back the slots and redials
	s.mu.Unlock()
	if c.opts.OnOverdue != nil {
		c.opts.OnOverdue()
	}
}

// pick returns a live connection for a call, and whether it has taken one
// of the connection's InFlight slots for it.
//
// Calls fill the first live connection with a free slot, in pool order,
// and go to the next only when it is full. Below saturation that puts the
// calls in flight together on one connection, whose writer then batches
// them and whose reader, at each end, reads them in fewer system calls:
// spread round robin over four connections, each call was a write, a read
// and a wake-up of its own. Two exceptions keep every connection in use,
// so that none looks idle to the enclave, which closes the idlest
// connections first when it has too many: a connection not yet given a
// call since it came up is preferred until it has one, and one call in
// spreadEvery takes the next live connection round robin if it has a free
// slot. No call waits while any live connection has a free slot; when
// every one is full, the call waits for a slot of the next one round
// robin.
func (c *Client) pick() (*slot, bool, error) {
	k := c.next.Add(1)
	start := k
	if k%spreadEvery == 0 {
		start = k / spreadEvery // k itself would start at the same connection each time
		if s := c.nextLive(start); s != nil && s.tryTake() {
			return s, true, nil
		} // full: fill first, as any other call
	}
	for _, fresh := range []bool{true, false} {
		for _, s := range c.slots {
			s.mu.Lock()
			ok := s.conn != nil && (!fresh || !s.carried)
			s.mu.Unlock()
			if !ok {
				continue
			}
			if s.tryTake() {
				return s, true, nil
			}
		}
	}
	if s := c.nextLive(start); s != nil {
		return s, false, nil
	}
	return nil, false, ErrUnavailable
}

// nextLive returns the first live connection from start round robin, or
// nil if none is up.
func (c *Client) nextLive(start uint64) *slot {
	n := uint64(len(c.slots))
	for i := range n {
		s := c.slots[(start+i)%n]
		s.mu.Lock()
		up := s.conn != nil
		s.mu.Unlock()
		if up {
			return s
		}
	}
	return nil
}

// tryTake takes one of the slot's InFlight places if one is free.
func (s *slot) tryTake() bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

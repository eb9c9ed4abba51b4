package channel_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// silentFirst listens on addr: the first connection it accepts reads every
// call and answers none, as a stuck or hostile peer does; every later one
// is served by h. It counts the connections accepted.
func silentFirst(t *testing.T, addr channel.Addr, h channel.Handler) *atomic.Int64 {
	t.Helper()
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	first := make(chan net.Conn, 1)
	later := &acceptAfter{Listener: ln, first: first, accepted: &accepted}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&channel.Server{Handler: h}).Serve(ctx, later)
	}()
	go func() {
		conn, ok := <-first
		if !ok {
			return
		}
		defer conn.Close()
		r := channel.NewFrameReader(conn, time.Minute)
		for {
			if _, err := r.ReadFrame(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	return &accepted
}

// acceptAfter hands its first connection to first instead of its caller.
type acceptAfter struct {
	net.Listener
	first    chan net.Conn
	accepted *atomic.Int64
}

func (l *acceptAfter) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.accepted.Add(1) == 1 {
			l.first <- conn
			close(l.first)
			continue
		}
		return conn, nil
	}
}

// TestSilentConnectionIsRedialled: a peer that reads calls and never
// answers them, not even Expired once their deadlines pass, would keep
// their slots held for as long as it keeps the connection open, and with
// every slot held no call would be sent again. A call unanswered
// AnswerGrace past its deadline closes the connection, and the pool
// redials.
func TestSilentConnectionIsRedialled(t *testing.T) {
	addr := unixAddr(t)
	accepted := silentFirst(t, addr, echo)
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1, InFlight: 2, AnswerGrace: 500 * time.Millisecond})
	t.Cleanup(c.Close)
	waitLive(t, c, 1)
	for i := range 2 { // every slot held by a call the peer never answers
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.Call(ctx, &channel.Call{Route: "echo", Body: []byte("x")})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d to the silent connection: %v, want context.DeadlineExceeded", i, err)
		}
	}
	// A call waiting for a slot when the connection closes fails as a
	// broken connection's calls do (retryable); the next is answered.
	deadline := time.Now().Add(5 * time.Second)
	var errs []error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := c.Call(ctx, &channel.Call{Route: "echo", Body: []byte("y")})
		cancel()
		if err == nil && r.Status == 200 {
			break
		}
		errs = append(errs, err)
		if time.Now().After(deadline) {
			t.Fatalf("no call answered in 5 s after the silent connection's calls were overdue (%d connections accepted): %v", accepted.Load(), errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.Overdue(); n != 1 {
		t.Fatalf("Overdue() = %d, want 1", n)
	}
	waitInFlight(t, c, 0)
}

// TestAnsweredLateIsNotOverdue: a call its caller gives up on and the
// peer answers within the grace does not close the connection.
func TestAnsweredLateIsNotOverdue(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	addr := unixAddr(t)
	serveWith(t, addr, &channel.Server{Handler: holding(&started, release), InFlight: 8, Workers: 4})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1, InFlight: 2, AnswerGrace: time.Second})
	t.Cleanup(c.Close)
	waitLive(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := c.Call(ctx, &channel.Call{Route: "hold", Body: []byte("x")})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held call: %v, want context.DeadlineExceeded", err)
	}
	close(release) // answered now, within the grace
	waitInFlight(t, c, 0)
	time.Sleep(1200 * time.Millisecond) // past the grace
	if n := c.Overdue(); n != 0 || c.Live() != 1 {
		t.Fatalf("after a late answer within the grace: Overdue() = %d, %d live, want 0 and 1", n, c.Live())
	}
	call(t, c)
}

// TestQueuedCallGivesUpAtItsDeadline: a peer that stops reading, and
// answers the ids it predicts so that their slots come back while their
// frames are still queued, fills the writer's queue. A call queued behind
// them must still end at its deadline, not when the writer's WriteTimeout
// closes the connection.
func TestQueuedCallGivesUpAtItsDeadline(t *testing.T) {
	addr := unixAddr(t)
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 1)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			conns <- conn // reads nothing
		}
	}()
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1, InFlight: 2})
	t.Cleanup(c.Close)
	waitLive(t, c, 1)
	conn := <-conns
	defer conn.Close()
	big := make([]byte, channel.MaxBody)
	// The client's ids count from 1; each call is answered by id as soon
	// as it is made, whether or not its frame was written.
	for id := uint64(1); id <= 3; id++ {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.Call(ctx, &channel.Call{Route: "echo", Body: big})
			done <- err
		}()
		b, err := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeReply, ID: id, Status: 200})
		if err != nil {
			t.Fatal(err)
		}
		// Its slot is taken just before it is pending, and an answer
		// to a call not yet pending would break the connection (a
		// reply to no call): answer once it has surely become pending.
		waitInFlight(t, c, 1)
		time.Sleep(50 * time.Millisecond)
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("call %d answered by a predicted id: %v", id, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Call(ctx, &channel.Call{Route: "echo", Body: []byte("y")})
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 3*time.Second {
		t.Fatalf("call queued behind a writer the peer holds: %v after %v, want context.DeadlineExceeded at its 200ms deadline", err, took.Round(time.Millisecond))
	}
	waitInFlight(t, c, 0)
}

// giveUp makes a call routed "hold" with a deadline of d and requires it to
// end at that deadline.
func giveUp(t *testing.T, c *channel.Client, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, err := c.Call(ctx, &channel.Call{Route: "hold", Body: []byte("x")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held call: %v, want context.DeadlineExceeded", err)
	}
}

// graceClient is a one-connection client of inFlight slots and the given
// AnswerGrace, of a server that holds the calls routed "hold" until the
// test ends and answers the others.
func graceClient(t *testing.T, inFlight int, grace time.Duration) *channel.Client {
	t.Helper()
	release := make(chan struct{})
	var started atomic.Int64
	addr := unixAddr(t)
	serveWith(t, addr, &channel.Server{Handler: holding(&started, release), InFlight: 8, Workers: 8})
	t.Cleanup(func() { close(release) }) // before the server's cleanup, which waits for the held calls
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1, InFlight: inFlight, AnswerGrace: grace})
	t.Cleanup(c.Close)
	waitLive(t, c, 1)
	return c
}

// TestLateAnswerOnABusyConnectionDoesNotCloseIt: a handler may answer past
// its deadline and the grace (one waiting on a lock its deadline does not
// bound); while the connection goes on answering other calls it is not
// taken for stuck, and none of those calls fails.
func TestLateAnswerOnABusyConnectionDoesNotCloseIt(t *testing.T) {
	c := graceClient(t, 4, 300*time.Millisecond)
	giveUp(t, c, 100*time.Millisecond)
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		call(t, c)
	}
	if n := c.Overdue(); n != 0 {
		t.Fatalf("Overdue() = %d while the connection answered every other call, want 0", n)
	}
}

// TestHeldSlotsCloseAConnectionThatAnswersOthers: a peer that answers every
// call but those it chooses to hold for ever can keep the slots of those;
// once it holds them all, no call is sent, nothing is answered, and the
// connection is closed the grace after.
func TestHeldSlotsCloseAConnectionThatAnswersOthers(t *testing.T) {
	c := graceClient(t, 2, 300*time.Millisecond)
	call(t, c)
	giveUp(t, c, 100*time.Millisecond)
	call(t, c) // one slot is left, and it answers
	giveUp(t, c, 100*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	var errs []error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := c.Call(ctx, &channel.Call{Route: "ready", Body: []byte("x")})
		cancel()
		if err == nil && r.Status == 200 {
			break
		}
		errs = append(errs, err)
		if time.Now().After(deadline) {
			t.Fatalf("no call answered in 5 s with every slot held by calls the peer keeps: %v", errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.Overdue(); n != 1 {
		t.Fatalf("Overdue() = %d, want 1", n)
	}
}

// TestSubMillisecondDeadlineIsNotSent: the frame carries whole
// milliseconds, and 0 reads as no deadline at all (MaxCallTimeout): a call
// with less than a millisecond left ends at once, unsent.
func TestSubMillisecondDeadlineIsNotSent(t *testing.T) {
	var started atomic.Int64
	release := make(chan struct{})
	defer close(release)
	c := holdingPool(t, 1, 2, &started, release)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Microsecond)
	defer cancel()
	if _, err := c.Call(ctx, &channel.Call{Route: "hold", Body: []byte("x")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with under 1 ms left: %v, want context.DeadlineExceeded", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := started.Load(); n != 0 || c.InFlight() != 0 {
		t.Fatalf("call with under 1 ms left: the server started %d, %d in flight; want it unsent", n, c.InFlight())
	}
}

// TestReplyToNoCallBreaksTheConnection: a peer that answers no call but
// writes now and then a reply to an id the client never sent (or one it
// already answered) must not pass for a connection still answering: such a
// reply breaks the protocol, and the connection is closed at once. Counted
// as activity, a reply every few seconds kept every slot held, and every
// call failed at its deadline, for as long as the peer liked.
func TestReplyToNoCallBreaksTheConnection(t *testing.T) {
	addr := unixAddr(t)
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			t.Cleanup(func() { conn.Close() })
			go func() { // reads every call, answers none
				r := channel.NewFrameReader(conn, time.Minute)
				for {
					if _, err := r.ReadFrame(); err != nil {
						return
					}
				}
			}()
			go func() { // and writes a reply to no call, every 50 ms
				b, _ := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeReply, ID: 1 << 62, Status: 200})
				for {
					if _, err := conn.Write(b); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
	}()
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1, InFlight: 2, AnswerGrace: 300 * time.Millisecond})
	t.Cleanup(c.Close)
	waitLive(t, c, 1)
	deadline := time.Now().Add(3 * time.Second)
	for accepted.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in 3 s to a peer replying to no call (overdue closes %d, %d in flight): each such reply must break its connection",
				accepted.Load(), c.Overdue(), c.InFlight())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.InFlight(); n != 0 {
		t.Fatalf("%d calls in flight with none made", n)
	}
}

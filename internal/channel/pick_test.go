package channel_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// countingListener counts the bytes the server reads on each connection it
// accepts, in order of acceptance.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	reads []*atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := new(atomic.Int64)
	l.mu.Lock()
	l.reads = append(l.reads, n)
	l.mu.Unlock()
	return &countingConn{Conn: conn, n: n}, nil
}

// read returns the bytes read so far on each connection.
func (l *countingListener) read() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, len(l.reads))
	for i, n := range l.reads {
		out[i] = n.Load()
	}
	return out
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func serveCounting(t *testing.T, addr channel.Addr, s *channel.Server) *countingListener {
	t.Helper()
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, cl)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return cl
}

// TestCallsFillOneConnectionBelowSaturation: one call at a time, as below
// saturation, goes to the first connection, so its writer and the readers
// at both ends batch what is in flight together; every pooled connection
// still carries calls: each its first as soon as it is up, and the others
// now and then, so none looks idle to the enclave.
func TestCallsFillOneConnectionBelowSaturation(t *testing.T) {
	addr := unixAddr(t)
	ln := serveCounting(t, addr, &channel.Server{Handler: echo})
	const pool = 4
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: pool})
	defer c.Close()
	waitLive(t, c, pool)
	for range pool {
		call(t, c)
	}
	warm := ln.read()
	if len(warm) != pool || slices.Contains(warm, 0) {
		t.Fatalf("bytes read per connection after %d calls: %v, want each of %d connections to have carried one", pool, warm, pool)
	}
	const calls = 400
	for range calls {
		call(t, c)
	}
	after := ln.read()
	var total, most int64
	for i := range after {
		d := after[i] - warm[i]
		if d == 0 {
			t.Errorf("connection %d carried none of %d calls: %v bytes before, %v after", i, calls, warm, after)
		}
		total += d
		most = max(most, d)
	}
	if most*10 < total*8 {
		t.Fatalf("the busiest connection read %d of %d bytes (%v before, %v after); want at least 80%%: calls one at a time fill the first connection", most, total, warm, after)
	}
}

// TestFullConnectionsSpillAndWait: calls beyond a connection's InFlight go
// to the next one, and once every connection is full, the next call waits
// for a slot instead of going to the enclave beyond its limit.
func TestFullConnectionsSpillAndWait(t *testing.T) {
	const pool, inFlight = 2, 2
	release := make(chan struct{})
	var started atomic.Int64
	c := holdingPool(t, pool, inFlight, &started, release)
	var wg sync.WaitGroup
	errs := make(chan error, pool*inFlight+1)
	hold := func() {
		defer wg.Done()
		r, err := c.Call(context.Background(), &channel.Call{Route: "hold", Body: []byte("x")})
		if err == nil && r.Status != 200 {
			t.Errorf("held call answered %d %q", r.Status, r.Body)
		}
		errs <- err
	}
	for range pool * inFlight {
		wg.Add(1)
		go hold()
	}
	deadline := time.Now().Add(5 * time.Second)
	for started.Load() < pool*inFlight {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d of %d calls reached the server, with %d connections of %d slots", started.Load(), pool*inFlight, pool, inFlight)
		}
		time.Sleep(time.Millisecond)
	}
	wg.Add(1)
	go hold()
	time.Sleep(100 * time.Millisecond)
	if n := started.Load(); n != pool*inFlight {
		close(release)
		t.Fatalf("%d calls reached the server with every connection full, want %d", n, pool*inFlight)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("held call: %v", err)
		}
	}
	if n := started.Load(); n != pool*inFlight+1 {
		t.Fatalf("%d calls reached the server, want %d", n, pool*inFlight+1)
	}
}

// TestNoCallWaitsWhileASlotIsFree: with every slot but one held, each call
// takes the free one at once, the calls that go round robin to keep every
// connection in use included: none waits behind a full connection.
func TestNoCallWaitsWhileASlotIsFree(t *testing.T) {
	const pool, inFlight = 4, 2
	release := make(chan struct{})
	var started atomic.Int64
	c := holdingPool(t, pool, inFlight, &started, release)
	for range pool {
		call(t, c)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	const held = pool*inFlight - 1
	for range held {
		wg.Go(func() {
			if _, err := c.Call(context.Background(), &channel.Call{Route: "hold", Body: []byte("x")}); err != nil {
				t.Errorf("held call: %v", err)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for started.Load() < held {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d held calls reached the server with %d slots", started.Load(), held, pool*inFlight)
		}
		time.Sleep(time.Millisecond)
	}
	// 200 calls one after another: about 12 go round robin, and each of
	// those finds the free slot's connection only one time in four.
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Call(ctx, &channel.Call{Route: "echo", Body: []byte("y")})
		cancel()
		if err != nil {
			t.Fatalf("call %d with one slot free: %v (it waited behind a full connection)", i, err)
		}
	}
}

// holding answers every call, and holds each call routed "hold" until
// release is closed, counting them in started.
func holding(started *atomic.Int64, release <-chan struct{}) channel.Handler {
	return channel.HandlerFunc(func(ctx context.Context, call *channel.Call) channel.Reply {
		if call.Route == "hold" {
			started.Add(1)
			<-release
		}
		return channel.Reply{Status: 200, Body: []byte(call.Route + ":" + string(call.Body))}
	})
}

// holdingPool serves holding on a new socket and returns a client of pool
// connections of inFlight slots each, every connection up.
func holdingPool(t *testing.T, pool, inFlight int, started *atomic.Int64, release <-chan struct{}) *channel.Client {
	t.Helper()
	addr := unixAddr(t)
	serveWith(t, addr, &channel.Server{Handler: holding(started, release), InFlight: 8, Workers: 16})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: pool, InFlight: inFlight})
	t.Cleanup(func() { c.Close() })
	waitLive(t, c, pool)
	return c
}

// waitInFlight waits until c counts want calls in flight.
func waitInFlight(t *testing.T, c *channel.Client, want int) {
	t.Helper()
	waitCount(t, "calls in flight", func() int64 { return int64(c.InFlight()) }, int64(want))
}

// abandon makes a call routed "hold" and gives it up once the server has
// started it (started rises past before).
func abandon(t *testing.T, c *channel.Client, started *atomic.Int64) {
	t.Helper()
	before := started.Load()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, &channel.Call{Route: "hold", Body: []byte("x")})
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for started.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the call to give up never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("abandoned call: %v, want context.Canceled", err)
	}
}

// TestAbandonedCallHoldsItsSlotUntilAnswered: a call its caller gives up
// on still counts against its connection until the server answers it,
// since the server holds it until then.
func TestAbandonedCallHoldsItsSlotUntilAnswered(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	c := holdingPool(t, 1, 2, &started, release)
	abandon(t, c, &started)
	if n := c.InFlight(); n != 1 {
		close(release)
		t.Fatalf("%d calls in flight after one was given up while the server held it, want 1", n)
	}
	close(release)
	waitInFlight(t, c, 0)
	call(t, c)
}

// TestAbandonedCallsDoNotSendOthersToAFullConnection: with the server
// holding a call given up on, and that call filling its connection at the
// server, the next call goes to the other connection and is answered: it
// is not sent where the server refuses it overloaded.
func TestAbandonedCallsDoNotSendOthersToAFullConnection(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var started atomic.Int64
	addr := unixAddr(t)
	serveWith(t, addr, &channel.Server{Handler: holding(&started, release), InFlight: 1, Workers: 4})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 2, InFlight: 1})
	t.Cleanup(c.Close)
	waitLive(t, c, 2)
	call(t, c)
	call(t, c) // each connection has carried a call
	abandon(t, c, &started)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := c.Call(ctx, &channel.Call{Route: "echo", Body: []byte("y")})
		cancel()
		if err != nil || r.Status != 200 {
			t.Fatalf("call %d after one was given up: %d %q, %v; want it answered on the connection with room", i, r.Status, r.Body, err)
		}
	}
}

// TestAbandonedCallSlotComesBackWhenTheConnectionBreaks: a call given up
// on whose connection breaks before any answer gives its slot back; the
// pool does not shrink by the calls the enclave never answered.
func TestAbandonedCallSlotComesBackWhenTheConnectionBreaks(t *testing.T) {
	addr := unixAddr(t)
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var started atomic.Int64
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- conn
			go func() { // reads calls, answers none
				r := channel.NewFrameReader(conn, time.Minute)
				for {
					if _, err := r.ReadFrame(); err != nil {
						return
					}
					started.Add(1)
				}
			}()
		}
	}()
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1, InFlight: 2})
	t.Cleanup(c.Close)
	waitLive(t, c, 1)
	abandon(t, c, &started)
	abandon(t, c, &started)
	if n := c.InFlight(); n != 2 {
		t.Fatalf("%d calls in flight after two were given up unanswered, want 2", n)
	}
	(<-conns).Close()
	waitInFlight(t, c, 0)
}

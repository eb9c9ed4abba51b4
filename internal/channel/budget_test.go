package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// The attacks of this file are a hostile parent's with complete calls: many
// large calls held in flight (behind busy workers, on dedicated routes), and
// replies it never reads, to pin the enclave's memory and goroutines or to
// hold up the calls of others.

// largestCall is a call frame with a body and a chain at their bounds.
func largestCall(t *testing.T, id uint64, route string) []byte {
	t.Helper()
	chain := make([][]byte, channel.MaxChain)
	for i := range chain {
		chain[i] = bytes.Repeat([]byte{0x30}, channel.MaxCertificate)
	}
	b, err := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeCall, ID: id, Route: route,
		Body: bytes.Repeat([]byte("e"), channel.MaxBody), Chain: chain, TimeoutMS: 30_000})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replies counts the replies that arrive on conn, by status, until it
// closes.
type replies struct {
	mu         sync.Mutex
	byStatus   map[int]int
	overloaded bool // every 503 carried the Overloaded body
	total      atomic.Int64
}

func readReplies(conn net.Conn, r *replies) {
	br := bufio.NewReader(conn)
	for {
		f, _, err := channel.ReadFrame(br, nil)
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.byStatus == nil {
			r.byStatus, r.overloaded = map[int]int{}, true
		}
		r.byStatus[int(f.Status)]++
		if int(f.Status) == channel.Overloaded.Status && !bytes.Equal(f.Body, channel.Overloaded.Body) {
			r.overloaded = false
		}
		r.mu.Unlock()
		r.total.Add(1)
	}
}

func (r *replies) count(status int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byStatus[status]
}

// blockingHandler holds every call until release is closed, counting those
// it holds.
func blockingHandler(release <-chan struct{}, running *atomic.Int64) channel.Handler {
	return channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		running.Add(1)
		defer running.Add(-1)
		if c.Route != "ready" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return channel.Reply{Status: 200, Body: append([]byte(c.Route+":"), c.Body[:min(len(c.Body), 8)]...)}
	})
}

// TestHeldCallBytesAreBounded sends many of the largest calls on a few
// connections, reading the replies, while the handler holds every call:
// the calls read and not yet answered hold at most the server's budget of
// bytes (the rest are answered Overloaded at once, none run), on worker and
// on dedicated routes alike, and the bytes are given back once the calls
// are answered.
func TestHeldCallBytesAreBounded(t *testing.T) {
	tests := []struct {
		name  string
		route string
	}{
		{"bad_largest_calls_behind_busy_workers", "v1/sign/x"},
		{"bad_largest_calls_on_a_dedicated_route", "v1/keys/status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := unixAddr(t)
			release := make(chan struct{})
			var running atomic.Int64
			srv := &channel.Server{Workers: 2, Handler: blockingHandler(release, &running),
				Dedicated: func(route string) bool { return strings.HasPrefix(route, "v1/keys/") }}
			serveWith(t, addr, srv)
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			const conns, perConn = 4, 128
			frame := largestCall(t, 1, tt.route)
			const budget = 16.0 // MiB: the server's 8 MiB and its connections' read buffers
			before := heldMiB()
			var got replies
			var sent sync.WaitGroup
			for range conns {
				conn := dialRaw(t, addr, nil)
				go readReplies(conn, &got)
				sent.Add(1)
				go func() {
					defer sent.Done()
					for range perConn {
						if _, err := conn.Write(frame); err != nil {
							return
						}
					}
				}()
			}
			writing := make(chan struct{})
			go func() { sent.Wait(); close(writing) }()
			// While the calls arrive the heap also holds those being read
			// and refused (a collection keeps what is allocated while it
			// marks): the bound is checked once they have all arrived, and
			// the attack stopped early well beyond it.
			const early = 64.0
			deadline := time.Now().Add(20 * time.Second)
			for last, quiet := int64(-1), 0; quiet < 3; {
				if time.Now().After(deadline) {
					t.Fatalf("%d replies of %d after 20s, %d calls running", got.total.Load(), conns*perConn, running.Load())
				}
				time.Sleep(100 * time.Millisecond)
				if d := heldMiB() - before; d > early {
					t.Fatalf("%d of the largest calls running (%d answered): the server holds %.1f MiB more while they arrive, want under %.0f MiB (and %.0f MiB once they have)", running.Load(), got.total.Load(), d, early, budget)
				}
				select {
				case <-writing:
				default:
					continue
				}
				if n := got.total.Load(); n == last {
					quiet++
				} else {
					last, quiet = n, 0
				}
			}
			if d := heldMiB() - before; d > budget {
				t.Fatalf("%d of the largest calls held (%d answered): the server holds %.1f MiB more, want under %.0f MiB", conns*perConn-got.total.Load(), got.total.Load(), d, budget)
			}
			<-writing
			if o := got.count(channel.Overloaded.Status); o == 0 || !got.overloaded {
				t.Fatalf("%d calls answered 503 (all with the Overloaded body: %v), want the calls beyond the budget refused", o, got.overloaded)
			}
			held := conns*perConn - got.total.Load()
			close(release)
			for got.total.Load() < conns*perConn {
				if time.Now().After(deadline) {
					t.Fatalf("%d replies of %d after the handler let go", got.total.Load(), conns*perConn)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if ok := got.count(200); int64(ok) != held {
				t.Fatalf("%d calls answered 200, want the %d the server held", ok, held)
			}
			waitHeld(t, srv, 0)
			// The budget is whole again: one more of the largest calls runs.
			conn := dialRaw(t, addr, frame)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			f, _, err := channel.ReadFrame(bufio.NewReader(conn), nil)
			if err != nil || f.Status != 200 {
				t.Fatalf("a large call after the attack: %+v %v, want 200", f, err)
			}
		})
	}
}

// TestDedicatedRoutesAreBounded holds many small calls to a dedicated route,
// each on its goroutine: at most the server's bound of them run at once, the
// others are answered Overloaded at once, and calls on workers still run.
func TestDedicatedRoutesAreBounded(t *testing.T) {
	addr := unixAddr(t)
	release := make(chan struct{})
	defer close(release)
	var running atomic.Int64
	srv := &channel.Server{Workers: 1, Handler: blockingHandler(release, &running),
		Dedicated: func(route string) bool { return strings.HasPrefix(route, "v1/keys/") }}
	serveWith(t, addr, srv)
	const conns, perConn = 4, 200
	var got replies
	for range conns {
		var calls []byte
		for i := range perConn {
			b, err := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeCall, ID: uint64(i), Route: "v1/keys/status", TimeoutMS: 30_000})
			if err != nil {
				t.Fatal(err)
			}
			calls = append(calls, b...)
		}
		conn := dialRaw(t, addr, calls)
		go readReplies(conn, &got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for running.Load()+got.total.Load() < conns*perConn {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // any more that would start
	if n := running.Load(); n > channel.DefaultMaxDedicated {
		t.Fatalf("%d calls on a dedicated route running at once, want at most %d", n, channel.DefaultMaxDedicated)
	}
	if o := got.count(channel.Overloaded.Status); int64(o) != conns*perConn-running.Load() || !got.overloaded {
		t.Fatalf("%d calls answered 503 (all Overloaded: %v), want the %d beyond those running", o, got.overloaded, conns*perConn-running.Load())
	}
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	waitLive(t, c, 1)
	call(t, c) // on a worker
}

// TestUnreadRepliesDoNotPileUp sends many calls on a connection whose peer
// never reads a reply: the replies waiting for it are bounded, they do not
// hold the workers (a call on another connection is answered at once), and
// the server drops the connection once a write has waited past its bound.
func TestUnreadRepliesDoNotPileUp(t *testing.T) {
	addr := unixAddr(t)
	srv := &channel.Server{Workers: 1, Handler: echo}
	serveWith(t, addr, srv)
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	waitLive(t, c, 1)
	call(t, c)
	conn := dialRaw(t, addr, nil)
	body := bytes.Repeat([]byte("r"), 2<<10)
	go func() {
		var calls []byte
		for i := range 64 {
			b, _ := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeCall, ID: uint64(i), Route: "v1/x", Body: body, TimeoutMS: 30_000})
			calls = append(calls, b...)
		}
		for range 100 { // 6400 calls, their replies 13 MiB: far more than a socket buffers
			if _, err := conn.Write(calls); err != nil {
				return
			}
		}
	}()
	time.Sleep(time.Second) // the server fills the socket and its queue
	start := time.Now()
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := c.Call(ctx, &channel.Call{Route: "ready", Body: []byte("x")})
		cancel()
		if err != nil || r.Status != 200 {
			t.Fatalf("genuine call %d while a peer does not read its replies: %v %d", i, err, r.Status)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("5 genuine calls took %s while a peer does not read its replies", d)
	}
	// Reading would make it a peer that reads: wait past the write
	// timeout, then read what the server wrote before it closed.
	time.Sleep(channel.WriteTimeout + 2*time.Second - time.Since(start))
	if !closedByPeer(conn, 2*time.Second) {
		t.Fatalf("the server kept a connection whose peer read nothing for %s", channel.WriteTimeout+2*time.Second)
	}
	waitHeld(t, srv, 0)
	call(t, c)
}

// waitHeld waits for the server's bytes held by calls to come to want.
func waitHeld(t *testing.T, srv *channel.Server, want int64) {
	t.Helper()
	waitCount(t, "bytes the server holds for calls", srv.HeldBytes, want)
}

// waitCount waits up to 5 s for get to return want.
func waitCount(t *testing.T, what string, get func() int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for get() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, get(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

package channel_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// The attacks of this file are a hostile parent's: connections that start a
// frame and never finish it, or are opened and never used, to pin the
// enclave's memory and file descriptors.

// partialFrame is the start of a frame that declares the largest length and
// sends only a few bytes of its body.
func partialFrame() []byte {
	return append(binary.BigEndian.AppendUint32(nil, channel.MaxFrame), 0xa5, 0x01, 0x01, 0x02, 0x07)
}

// dialRaw opens a connection to the server and writes b (if any).
func dialRaw(t *testing.T, addr channel.Addr, b []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("unix", addr.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if len(b) > 0 {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// closedByPeer reports whether the server closed conn, waiting at most wait
// for it to do so. A connection the server keeps open times out instead.
func closedByPeer(conn net.Conn, wait time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(wait))
	defer conn.SetReadDeadline(time.Time{})
	var b [64]byte
	for {
		_, err := conn.Read(b[:])
		if err == nil {
			continue // a reply; keep reading
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// heldMiB is the heap and stack the process holds after a collection (two:
// the second empties what pools kept from the first).
func heldMiB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse+m.StackInuse) / (1 << 20)
}

// fdBudget is how many connections the test may open: both ends of each are
// in this process.
func fdBudget(t *testing.T, want int) int {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if have := int(lim.Cur) - 256; have < want {
		t.Logf("open-file limit %d: %d connections instead of %d", lim.Cur, have, want)
		return have
	}
	return want
}

func call(t *testing.T, c *channel.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Call(ctx, &channel.Call{Route: "ready", Body: []byte("x")})
	if err != nil || r.Status != 200 || string(r.Body) != "ready:x" {
		t.Fatalf("genuine call: %v %d %q", err, r.Status, r.Body)
	}
}

// TestPartialFramesDoNotPinEnclaveMemory opens many connections that each
// declare a frame of the largest length and send a few bytes of it: the
// server must not allocate what the length prefix declares before the bytes
// arrive, nor keep every such connection open.
func TestPartialFramesDoNotPinEnclaveMemory(t *testing.T) {
	addr := unixAddr(t)
	serve(t, addr, echo, 0)
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 2})
	defer c.Close()
	waitLive(t, c, 2)
	for range 4 {
		call(t, c)
	}
	const budget = 12.0 // MiB: DefaultMaxConns connections at a read buffer each, and their goroutines
	n := fdBudget(t, 1000)
	before := heldMiB()
	for opened := 0; opened < n; {
		for range min(50, n-opened) {
			dialRaw(t, addr, partialFrame())
			opened++
		}
		time.Sleep(50 * time.Millisecond) // the server reads what was sent
		if d := heldMiB() - before; d > budget {
			t.Fatalf("%d connections each holding a partial frame: the server holds %.1f MiB more, want under %.0f MiB", opened, d, budget)
		}
	}
	for range 4 {
		call(t, c)
	}
	if c.Live() != 2 {
		t.Fatalf("%d of the genuine client's 2 connections live after the attack", c.Live())
	}
}

// TestChannelConnectionsAreCapped opens more idle connections than the
// server keeps: the oldest that never completed a frame are closed, a
// newcomer always gets in, and connections that carry calls are kept.
func TestChannelConnectionsAreCapped(t *testing.T) {
	addr := unixAddr(t)
	const max = 8
	serveWith(t, addr, &channel.Server{Handler: echo, MaxConns: max})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 2})
	defer c.Close()
	waitLive(t, c, 2)
	for range 4 {
		call(t, c) // round robin: both connections carry a call
	}
	tests := []struct {
		name string
		send []byte
	}{
		{"bad_idle_connections", nil},
		{"bad_partial_frames", partialFrame()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conns []net.Conn
			for range 30 {
				conns = append(conns, dialRaw(t, addr, tt.send))
				time.Sleep(2 * time.Millisecond) // accepted in order
			}
			open := make([]bool, len(conns))
			var wg sync.WaitGroup
			for i, conn := range conns {
				wg.Add(1)
				go func() { defer wg.Done(); open[i] = !closedByPeer(conn, 500*time.Millisecond) }()
			}
			wg.Wait()
			var kept []int
			for i, o := range open {
				if o {
					kept = append(kept, i)
				}
			}
			want := fmt.Sprint([]int{24, 25, 26, 27, 28, 29}) // the newest, beside the client's 2
			if fmt.Sprint(kept) != want {
				t.Fatalf("server kept connections %v of 30, want %s (cap %d less the client's 2)", kept, want, max)
			}
			call(t, c)
			if c.Live() != 2 {
				t.Fatalf("the genuine client has %d live connections, want 2", c.Live())
			}
			for _, conn := range conns {
				conn.Close()
			}
		})
	}
}

// TestIncompleteFrameIsDroppedAfterDeadline: a frame whose first byte came
// must complete within the frame timeout; a connection idle between frames
// is kept however long it waits.
func TestIncompleteFrameIsDroppedAfterDeadline(t *testing.T) {
	addr := unixAddr(t)
	const timeout = 200 * time.Millisecond
	serveWith(t, addr, &channel.Server{Handler: echo, FrameTimeout: timeout})
	ready, err := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeCall, ID: 1, Route: "ready"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		first  []byte        // sent at once
		then   []byte        // sent after pause, if any
		pause  time.Duration //
		closed bool
	}{
		{name: "bad_incomplete_body", first: partialFrame(), closed: true},
		{name: "bad_incomplete_length", first: []byte{0, 0}, closed: true},
		{name: "bad_incomplete_after_a_frame", first: append(append([]byte{}, ready...), partialFrame()...), closed: true},
		{name: "bad_rest_after_the_deadline", first: ready[:5], then: ready[5:], pause: 3 * timeout, closed: true},
		{name: "idle", closed: false},
		{name: "idle_after_a_frame", first: ready, closed: false},
		{name: "slow_frame_within_the_deadline", first: ready[:5], then: ready[5:], pause: timeout / 4, closed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The clock starts before the bytes leave: the server's
			// deadline cannot start earlier than this.
			start := time.Now()
			conn := dialRaw(t, addr, tt.first)
			if tt.then != nil {
				time.Sleep(tt.pause)
				conn.Write(tt.then) // may fail: the server may have closed
			}
			got := closedByPeer(conn, 5*timeout)
			if got != tt.closed {
				t.Fatalf("closed by the server = %v after %s, want %v", got, time.Since(start).Round(time.Millisecond), tt.closed)
			}
			if got && time.Since(start) < timeout {
				t.Fatalf("closed after %s, before the frame timeout of %s", time.Since(start), timeout)
			}
		})
	}
}

// filesListener fails its first accepts as a process out of file
// descriptors does.
type filesListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *filesListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.fails > 0
	l.fails--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptRetriesWhenOutOfFiles: running out of descriptors, as a flood of
// connections can make the enclave do, pauses accepting; it does not stop
// the server.
func TestAcceptRetriesWhenOutOfFiles(t *testing.T) {
	addr := unixAddr(t)
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- (&channel.Server{Handler: echo}).Serve(ctx, &filesListener{Listener: ln, fails: 3}) }()
	defer func() { cancel(); <-served }()
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	waitLive(t, c, 1)
	call(t, c)
	select {
	case err := <-served:
		t.Fatalf("server stopped: %v", err)
	default:
	}
}

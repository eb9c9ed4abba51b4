package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

func unixAddr(t *testing.T) channel.Addr {
	t.Helper()
	a, err := channel.ParseAddr("unix://" + filepath.Join(t.TempDir(), "enclave.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serve starts a channel server with h on addr and stops it at cleanup.
func serve(t *testing.T, addr channel.Addr, h channel.Handler, inFlight int) (stop func()) {
	t.Helper()
	return serveWith(t, addr, &channel.Server{Handler: h, InFlight: inFlight})
}

var echo = channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
	return channel.Reply{Status: 200, Body: append([]byte(c.Route+":"), c.Body...)}
})

func waitLive(t *testing.T, c *channel.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Live() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d live connections, want %d", c.Live(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCallsAreMultiplexed(t *testing.T) {
	addr := unixAddr(t)
	serve(t, addr, echo, 0)
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 2})
	defer c.Close()
	waitLive(t, c, 2)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte{byte(i), byte(i >> 8)}
			r, err := c.Call(context.Background(), &channel.Call{Route: "v1/x", Body: body, Chain: [][]byte{{1, 2, 3}}})
			if err != nil {
				t.Error(err)
				return
			}
			if r.Status != 200 || !bytes.Equal(r.Body, append([]byte("v1/x:"), body...)) {
				t.Errorf("reply %d %q", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
}

func TestDeadlineTravelsWithTheCall(t *testing.T) {
	addr := unixAddr(t)
	seen := make(chan time.Duration, 1)
	block := make(chan struct{})
	defer close(block)
	serve(t, addr, channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		d, ok := ctx.Deadline()
		if !ok {
			d = time.Now().Add(time.Hour)
		}
		seen <- time.Until(d)
		<-block // a stuck enclave: the caller's own deadline must fire
		return channel.Reply{Status: 200}
	}), 0)
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	waitLive(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Call(ctx, &channel.Call{Route: "v1/slow"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call: %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("call outlived its deadline")
	}
	if d := <-seen; d > 200*time.Millisecond {
		t.Fatalf("enclave saw a deadline %s away, want at most 200ms", d)
	}
}

func TestInFlightLimitAnswersOverloaded(t *testing.T) {
	addr := unixAddr(t)
	release := make(chan struct{})
	serve(t, addr, channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		<-release
		return channel.Reply{Status: 200}
	}), 2)
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1, InFlight: 10})
	defer c.Close()
	waitLive(t, c, 1)
	var wg sync.WaitGroup
	results := make(chan int, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Call(context.Background(), &channel.Call{Route: "v1/x"})
			if err != nil {
				t.Error(err)
			}
			results <- r.Status
		}()
	}
	// Three of five are refused at once; then the two held ones finish.
	for range 3 {
		if s := <-results; s != 503 {
			t.Fatalf("status %d, want 503", s)
		}
	}
	close(release)
	wg.Wait()
	close(results)
	for s := range results {
		if s != 200 {
			t.Fatalf("status %d, want 200", s)
		}
	}
}

func TestUnavailableWithoutEnclaveAndReconnect(t *testing.T) {
	addr := unixAddr(t)
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	if _, err := c.Call(context.Background(), &channel.Call{Route: "ready"}); !errors.Is(err, channel.ErrUnavailable) {
		t.Fatalf("Call without enclave: %v, want ErrUnavailable", err)
	}
	stop := serve(t, addr, echo, 0)
	waitLive(t, c, 1)
	if _, err := c.Call(context.Background(), &channel.Call{Route: "ready"}); err != nil {
		t.Fatal(err)
	}
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for c.Live() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("connection still live after the enclave stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	serve(t, addr, echo, 0)
	waitLive(t, c, 1)
	if _, err := c.Call(context.Background(), &channel.Call{Route: "ready"}); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

func rawFrame(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalIsStrict(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"bad_unknown_key", rawFrame(t, map[int]any{1: 1, 2: 7, 3: "v1/x", 99: 1})},
		{"bad_duplicate_key", []byte{0xa3, 0x01, 0x01, 0x02, 0x07, 0x02, 0x08}},
		{"bad_no_route", rawFrame(t, map[int]any{1: 1, 2: 7})},
		{"bad_type", rawFrame(t, map[int]any{1: 9, 2: 7, 3: "x"})},
		{"bad_reply_status", rawFrame(t, map[int]any{1: 2, 2: 7, 7: 99})},
		{"bad_reply_with_route", rawFrame(t, map[int]any{1: 2, 2: 7, 7: 200, 3: "x"})},
		{"bad_chain_too_long", rawFrame(t, map[int]any{1: 1, 2: 7, 3: "x", 5: make([][]byte, 9)})},
		{"bad_empty_certificate", rawFrame(t, map[int]any{1: 1, 2: 7, 3: "x", 5: [][]byte{{}}})},
		{"bad_route_as_bytes", rawFrame(t, map[int]any{1: 1, 2: 7, 3: []byte("x")})},
		{"bad_trailing_data", append(rawFrame(t, map[int]any{1: 1, 2: 7, 3: "x"}), 0)},
		{"bad_indefinite_map", []byte{0xbf, 0x01, 0x01, 0x02, 0x07, 0x03, 0x61, 'x', 0xff}},
		{"bad_tag", append([]byte{0xc1}, rawFrame(t, map[int]any{1: 1, 2: 7, 3: "x"})...)},
		{"bad_not_a_map", rawFrame(t, []int{1, 2})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := channel.Unmarshal(tt.b); !errors.Is(err, channel.ErrFrame) {
				t.Fatalf("Unmarshal: %v, want ErrFrame", err)
			}
		})
	}
}

// TestMalformedFrameClosesOnlyThatConnection sends garbage to the server as a
// hostile parent would, and checks the server still serves others.
func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	addr := unixAddr(t)
	serve(t, addr, echo, 0)
	for _, bad := range [][]byte{
		{0xff, 0xff, 0xff, 0xff},              // length beyond MaxFrame
		{0, 0, 0, 0},                          // zero length
		{0, 0, 0, 3, 0xa1, 0x01},              // truncated
		binary.BigEndian.AppendUint32(nil, 2), // declared body missing
		append(binary.BigEndian.AppendUint32(nil, 3), 0x82, 0x01, 0x02),
	} {
		conn, err := net.Dial("unix", addr.Path)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(bad)
		if c, ok := conn.(*net.UnixConn); ok {
			c.CloseWrite()
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Fatalf("server answered a malformed frame (%d bytes, %v)", n, err)
		}
		conn.Close()
	}
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	waitLive(t, c, 1)
	if _, err := c.Call(context.Background(), &channel.Call{Route: "ready"}); err != nil {
		t.Fatal(err)
	}
}

func TestParseAddr(t *testing.T) {
	for _, ok := range []string{"vsock://16:5000", "unix:///tmp/x.sock", "tcp://127.0.0.1:9000"} {
		a, err := channel.ParseAddr(ok)
		if err != nil || a.String() != ok {
			t.Errorf("ParseAddr(%q) = %v, %v", ok, a, err)
		}
	}
	for _, bad := range []string{"", "vsock://x:1", "vsock://3", "unix://relative", "tcp://nohost", "http://x:1", "vsock://3:99999999999"} {
		if _, err := channel.ParseAddr(bad); err == nil {
			t.Errorf("ParseAddr(%q) succeeded", bad)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	call, _ := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeCall, ID: 1, Route: "v1/derive-address", Body: []byte("eyJ"), Chain: [][]byte{{0x30}}, TimeoutMS: 100})
	reply, _ := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeReply, ID: 1, Status: 200, Body: []byte("x")})
	f.Add(call[4:])
	f.Add(reply[4:])
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := channel.Unmarshal(b)
		if err != nil {
			if !errors.Is(err, channel.ErrFrame) {
				t.Fatalf("error is not ErrFrame: %v", err)
			}
			return
		}
		// Round trip: what decodes re-encodes and decodes to the same frame.
		again, err := channel.AppendFrame(nil, fr)
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := channel.Unmarshal(again[4:])
		if err != nil {
			t.Fatal(err)
		}
		if fr.ID != fr2.ID || fr.Route != fr2.Route || !bytes.Equal(fr.Body, fr2.Body) || fr.Status != fr2.Status {
			t.Fatal("round trip changed the frame")
		}
	})
}

// TestAppendFrameMatchesCBOR holds the hand-written frame encoder to the
// core deterministic encoding fxamacker/cbor produces for the struct.
func TestAppendFrameMatchesCBOR(t *testing.T) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	long := bytes.Repeat([]byte{7}, 70000)
	frames := []channel.Frame{
		{Type: channel.TypeCall, ID: 0, Route: "ready"},
		{Type: channel.TypeCall, ID: 23, Route: "v1/derive-address", Body: []byte("x"), Chain: [][]byte{{1}, make([]byte, 300)}, TimeoutMS: 10000},
		{Type: channel.TypeCall, ID: 24, Route: strings.Repeat("r", 128), Body: long, TimeoutMS: 60000},
		{Type: channel.TypeReply, ID: 255, Status: 200, Body: []byte("{}")},
		{Type: channel.TypeReply, ID: 256, Status: 503},
		{Type: channel.TypeReply, ID: 65535, Status: 599, Body: make([]byte, 256)},
		{Type: channel.TypeReply, ID: 65536, Status: 100, Body: make([]byte, 65536)},
		{Type: channel.TypeReply, ID: 1 << 32, Status: 404},
		{Type: channel.TypeReply, ID: ^uint64(0), Status: 500},
	}
	for i, f := range frames {
		got, err := channel.AppendFrame(nil, &f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		want, err := em.Marshal(&f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[4:], want) || int(binary.BigEndian.Uint32(got)) != len(want) {
			t.Fatalf("frame %d: encoded %x…, fxamacker/cbor %x…", i, got[4:min(len(got), 40)], want[:min(len(want), 36)])
		}
		back, err := channel.Unmarshal(got[4:])
		if err != nil || back.ID != f.ID || back.Route != f.Route || !bytes.Equal(back.Body, f.Body) {
			t.Fatalf("frame %d does not decode back: %v", i, err)
		}
	}
}

func FuzzAppendFrameMatchesCBOR(f *testing.F) {
	em, _ := cbor.CoreDetEncOptions().EncMode()
	f.Add(true, uint64(1), "v1/derive-address", []byte("body"), []byte("cert"), uint32(5000), uint16(0))
	f.Add(false, uint64(1<<40), "", []byte{}, []byte(nil), uint32(0), uint16(200))
	f.Fuzz(func(t *testing.T, call bool, id uint64, route string, body, cert []byte, timeout uint32, status uint16) {
		fr := channel.Frame{Type: channel.TypeReply, ID: id, Body: body, Status: status}
		if call {
			fr = channel.Frame{Type: channel.TypeCall, ID: id, Route: route, Body: body, TimeoutMS: timeout}
			if cert != nil {
				fr.Chain = [][]byte{cert}
			}
		}
		got, err := channel.AppendFrame(nil, &fr)
		if err != nil {
			return // refused by Validate, as before
		}
		want, err := em.Marshal(&fr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[4:], want) {
			t.Fatalf("encoded %x, fxamacker/cbor %x", got[4:], want)
		}
	})
}

// serveWith starts s on addr and stops it at cleanup (or at stop, which
// may be called first).
func serveWith(t testing.TB, addr channel.Addr, s *channel.Server) (stop func()) {
	t.Helper()
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, ln)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func TestWorkersBoundTheCallsRunning(t *testing.T) {
	addr := unixAddr(t)
	var running, most atomic.Int32
	serveWith(t, addr, &channel.Server{Workers: 2, Handler: channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		return channel.Reply{Status: 200}
	})})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 2})
	defer c.Close()
	waitLive(t, c, 2)
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := c.Call(context.Background(), &channel.Call{Route: "v1/x"}); err != nil || r.Status != 200 {
				t.Errorf("call: %v %d", err, r.Status)
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Fatalf("%d calls ran at once, want 2 (the workers)", m)
	}
}

func TestDeadlineCountsTheWaitForAWorker(t *testing.T) {
	addr := unixAddr(t)
	release := make(chan struct{})
	var ran sync.Map
	serveWith(t, addr, &channel.Server{Workers: 1, Handler: channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		ran.Store(c.Route, true)
		if c.Route == "v1/hold" {
			<-release
		}
		return channel.Reply{Status: 200}
	})})
	conn, err := channel.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, f := range []*channel.Frame{
		{Type: channel.TypeCall, ID: 1, Route: "v1/hold", TimeoutMS: 10_000},
		{Type: channel.TypeCall, ID: 2, Route: "v1/queued", TimeoutMS: 100},
	} {
		b, err := channel.AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the queued call's deadline passes behind the held one
	close(release)
	r := bufio.NewReader(conn)
	replies := map[uint64]*channel.Frame{}
	for range 2 {
		f, _, err := channel.ReadFrame(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		replies[f.ID] = f
	}
	if f := replies[1]; f == nil || f.Status != 200 {
		t.Fatalf("held call: %+v", f)
	}
	if f := replies[2]; f == nil || int(f.Status) != channel.Expired.Status || !bytes.Equal(f.Body, channel.Expired.Body) {
		t.Fatalf("queued call whose deadline passed: %+v, want the Expired reply", f)
	}
	if _, ok := ran.Load("v1/queued"); ok {
		t.Fatal("a worker ran a call whose deadline had passed")
	}
}

func TestDedicatedRoutesDoNotWaitForWorkers(t *testing.T) {
	addr := unixAddr(t)
	release := make(chan struct{})
	defer close(release)
	serveWith(t, addr, &channel.Server{Workers: 1,
		Dedicated: func(route string) bool { return route == "v1/keys/status" },
		Handler: channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
			if c.Route == "v1/hold" {
				<-release
			}
			return channel.Reply{Status: 200}
		})})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	waitLive(t, c, 1)
	go c.Call(context.Background(), &channel.Call{Route: "v1/hold"})
	time.Sleep(50 * time.Millisecond) // the hold call has the only worker
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := c.Call(ctx, &channel.Call{Route: "v1/keys/status"}); err != nil || r.Status != 200 {
		t.Fatalf("dedicated call behind a busy worker: %v %d", err, r.Status)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if _, err := c.Call(short, &channel.Call{Route: "v1/other"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a worker call behind the busy worker: %v, want DeadlineExceeded (the control)", err)
	}
}

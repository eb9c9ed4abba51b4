package channel

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestAnsweredCallStopsItsWatch: the timer that looks at a connection for a
// call given up on goes when the call is answered, not at its due time, so
// callers that give up on calls the enclave then answers leave nothing
// behind.
func TestAnsweredCallStopsItsWatch(t *testing.T) {
	addr, err := ParseAddr("unix://" + filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Server{Handler: HandlerFunc(func(context.Context, *Call) Reply { <-release; return Reply{Status: 200} })}).Serve(ctx, ln)
	}()
	defer func() { cancel(); ln.Close(); <-done }()
	c := NewClient(addr, ClientOptions{PoolSize: 1, InFlight: 4})
	defer c.Close()
	for c.Live() == 0 {
		time.Sleep(time.Millisecond)
	}
	watches := func() int {
		s := c.slots[0]
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.watch)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = c.Call(cctx, &Call{Route: "r"})
	ccancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held call: %v", err)
	}
	if n := watches(); n != 1 {
		t.Fatalf("%d watches for one call given up on, want 1", n)
	}
	close(release)
	for deadline := time.Now().Add(5 * time.Second); c.InFlight() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the answered call's slot never came back")
		}
	}
	if n := watches(); n != 0 {
		t.Fatalf("%d watches left after the call given up on was answered, want 0", n)
	}
}

package channel

import (
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// countingConn counts the writes made to it and discards their bytes.
type countingConn struct {
	net.Conn // nil: the writer uses only Write, SetWriteDeadline and Close
	mu       sync.Mutex
	writes   int
	bytes    int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	c.bytes += len(p)
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }
func (c *countingConn) Close() error                     { return nil }

func (c *countingConn) counts() (writes, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.bytes
}

// TestFramesQueuedTogetherShareAWrite: with yield (the parent's client),
// frames queued by goroutines that are ready to run at the same time go
// out in a few writes, not one each. At one P (where internal/procs keeps
// a process below one CPU) a writer that ran as soon as a frame was queued
// would write each alone: every send hands the frame to the waiting
// writer, which then runs before the next sender does. Without yield (the
// enclave's server, whose replies must not wait behind the next call's
// work) that is what happens: the control.
func TestFramesQueuedTogetherShareAWrite(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n, size = 64, 100
	for _, tc := range []struct {
		name      string
		yield     bool
		maxWrites int
		minWrites int
	}{
		{"yield_shares_writes", true, n / 8, 1},
		{"no_yield_writes_each_alone", false, n, n / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.yield && raceEnabled {
				t.Skip("the race detector randomizes which goroutine runs next, which batches frames without yield")
			}
			conn := &countingConn{}
			w := newBatchWriter(conn, n, nil, tc.yield)
			defer w.stop()
			var senders sync.WaitGroup
			for range n {
				senders.Add(1)
				go func() {
					defer senders.Done()
					w.send(outFrame{b: make([]byte, size)})
				}()
			}
			senders.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for {
				writes, bytes := conn.counts()
				if bytes == n*size {
					t.Logf("%d frames, %d writes", n, writes)
					// With yield the first frame may go alone, taken
					// before the others were queued. Without, a timer
					// or a preemption on a busy machine can let some
					// frames share a write: the control's floor is low.
					if writes > tc.maxWrites || writes < tc.minWrites {
						t.Fatalf("%d frames queued together took %d writes, want %d to %d", n, writes, tc.minWrites, tc.maxWrites)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("wrote %d of %d bytes in 10s", bytes, n*size)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

package proxy

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeLog records each write; wrote is told after each.
type writeLog struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	w.wrote <- struct{}{}
	return len(p), nil
}

func (w *writeLog) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

func (w *writeLog) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes[len(w.writes)-1]
}

// lingerClock is the sink's linger driven by the test: each linger the
// sink starts is a channel on lingers, which expires when the test sends
// on it, and never otherwise.
type lingerClock struct{ lingers chan chan time.Time }

func (c *lingerClock) after() <-chan time.Time {
	l := make(chan time.Time, 1)
	c.lingers <- l
	return l
}

func newTestSink(t *testing.T, depth int) (*LogSink, *writeLog, *lingerClock) {
	t.Helper()
	w := &writeLog{wrote: make(chan struct{}, 1000)}
	c := &lingerClock{lingers: make(chan chan time.Time, 1000)}
	s := newLogSink(w, depth, nil, c.after)
	t.Cleanup(s.Close)
	return s, w, c
}

// lingering is a test sink that has written a first line and lingers on
// linger, which only the test can expire.
func lingering(t *testing.T, depth int) (l *slog.Logger, w *writeLog, c *lingerClock, linger chan time.Time) {
	t.Helper()
	s, w, c := newTestSink(t, depth)
	l = slog.New(s.Handler())
	l.Info("first")
	waitFor(t, w.wrote, "write")
	return l, w, c, waitFor(t, c.lingers, "linger")
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

// TestLogSinkWritesALoneLineAtOnce: a line after a quiet spell is not
// held for a linger.
func TestLogSinkWritesALoneLineAtOnce(t *testing.T) {
	s, w, _ := newTestSink(t, 16)
	slog.New(s.Handler()).Info("alone")
	waitFor(t, w.wrote, "write")
	if !strings.Contains(w.last(), `"msg":"alone"`) {
		t.Fatalf("wrote %q", w.last())
	}
}

// TestLogSinkLingersAfterAWrite: Info lines logged while the sink lingers
// wait for the linger and go out together, in order.
func TestLogSinkLingersAfterAWrite(t *testing.T) {
	l, w, _, linger := lingering(t, 128)
	for i := range 50 {
		l.Info("later", "i", i)
	}
	time.Sleep(50 * time.Millisecond) // time enough for a sink that wrote at once
	if n := w.count(); n != 1 {
		t.Fatalf("%d writes while the sink lingers, want the first alone", n)
	}
	linger <- time.Now()
	waitFor(t, w.wrote, "write after the linger")
	got, at := w.last(), -1
	for i := range 50 {
		j := strings.Index(got, fmt.Sprintf(`"msg":"later","i":%d}`, i))
		if j <= at {
			t.Fatalf("line %d missing or out of order in %q", i, got)
		}
		at = j
	}
}

// TestLogSinkGoesBackToWritingAtOnce: a linger that finds nothing ends
// the lingering; the next line is written as it comes, not a linger later.
func TestLogSinkGoesBackToWritingAtOnce(t *testing.T) {
	l, w, c, linger := lingering(t, 16)
	linger <- time.Now()              // expires with nothing queued
	time.Sleep(50 * time.Millisecond) // time enough for a sink that lingers again
	if n := len(c.lingers); n != 0 {
		t.Fatalf("%d more lingers after one that found nothing", n)
	}
	l.Info("after a quiet spell")
	waitFor(t, w.wrote, "write of a line after a quiet spell, with no linger expiring")
	if !strings.Contains(w.last(), "after a quiet spell") {
		t.Fatalf("wrote %q", w.last())
	}
}

// TestLogSinkWritesAWarningAtOnce: a warning cuts the linger short, and
// the Info lines queued before it go out with it, first.
func TestLogSinkWritesAWarningAtOnce(t *testing.T) {
	l, w, _, _ := lingering(t, 128) // the linger never expires
	l.Info("queued")
	l.Warn("trouble")
	waitFor(t, w.wrote, "write of a warning during a linger")
	got := w.last()
	if q, tr := strings.Index(got, `"msg":"queued"`), strings.Index(got, `"msg":"trouble"`); q < 0 || tr < q {
		t.Fatalf("wrote %q, want the queued line and then the warning", got)
	}
}

// TestLogSinkHurriesWhenTheQueueFills: more lines than the queue holds,
// logged while the sink lingers, do not wait for the linger, whatever the
// depth asked for.
func TestLogSinkHurriesWhenTheQueueFills(t *testing.T) {
	for _, depth := range []int{8, 1, 0} {
		l, _, _, _ := lingering(t, depth) // the linger never expires
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 40 {
				l.Info("burst", "i", i)
			}
		}()
		waitFor(t, done, fmt.Sprintf("end of a burst with depth %d: logging blocked behind the linger", depth))
	}
}

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

func waitWrite(t *testing.T, w *writeLog) {
	t.Helper()
	select {
	case <-w.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no write")
	}
}

// TestLogSinkWritesALoneLineAtOnce: a line after a quiet spell is not
// held for the linger (here an hour).
func TestLogSinkWritesALoneLineAtOnce(t *testing.T) {
	w := &writeLog{wrote: make(chan struct{}, 100)}
	s := newLogSink(w, 16, nil, time.Hour)
	defer s.Close()
	slog.New(s.Handler()).Info("alone")
	waitWrite(t, w)
	if !strings.Contains(w.writes[0], `"msg":"alone"`) {
		t.Fatalf("wrote %q", w.writes[0])
	}
}

// TestLogSinkLingersAfterAWrite: lines logged while the sink lingers wait
// for it and go out together, in order; Close writes them at once.
func TestLogSinkLingersAfterAWrite(t *testing.T) {
	w := &writeLog{wrote: make(chan struct{}, 100)}
	s := newLogSink(w, 128, nil, time.Hour)
	l := slog.New(s.Handler())
	l.Info("first")
	waitWrite(t, w)
	for i := range 50 {
		l.Info("later", "i", i)
	}
	time.Sleep(50 * time.Millisecond) // time enough for a sink that wrote at once
	if n := w.count(); n != 1 {
		t.Fatalf("%d writes while the sink lingers, want the first alone", n)
	}
	s.Close()
	if n := w.count(); n != 2 {
		t.Fatalf("%d writes after Close, want 2", n)
	}
	got := w.writes[1]
	for i := range 50 {
		if !strings.Contains(got, fmt.Sprintf(`"msg":"later","i":%d}`, i)) || (i > 0 && strings.Index(got, fmt.Sprintf(`"i":%d}`, i)) < strings.Index(got, fmt.Sprintf(`"i":%d}`, i-1))) {
			t.Fatalf("line %d missing or out of order in %q", i, got)
		}
	}
}

// TestLogSinkHurriesWhenTheQueueFills: more lines than the queue holds,
// logged while the sink lingers for an hour, do not wait the hour.
func TestLogSinkHurriesWhenTheQueueFills(t *testing.T) {
	w := &writeLog{wrote: make(chan struct{}, 100)}
	s := newLogSink(w, 8, nil, time.Hour)
	defer s.Close()
	l := slog.New(s.Handler())
	l.Info("first")
	waitWrite(t, w)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			l.Info("burst", "i", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logging blocked behind the linger with the queue full")
	}
}

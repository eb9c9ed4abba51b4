package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/parent/proxy"
)

type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func TestLogSinkKeepsEveryLineInOrderPerLogger(t *testing.T) {
	w := &countingWriter{}
	s := proxy.NewLogSink(w, 64, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := slog.New(s.Handler()).With("g", g)
			for i := range 500 {
				l.Info("line", "i", i)
			}
		}()
	}
	wg.Wait()
	s.Close()
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	next := map[int]int{}
	for _, l := range lines {
		var rec struct {
			Msg  string `json:"msg"`
			G, I int
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg != "line" || next[rec.G] != rec.I {
			t.Fatalf("line %q out of order or torn", l)
		}
		next[rec.G]++
	}
	if w.writes >= 4000 {
		t.Logf("no coalescing happened (%d writes); fine on an idle machine", w.writes)
	}
}

func TestLogSinkFormatsAsSlogJSONDoes(t *testing.T) {
	var want, got bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // the two loggers stamp different times
		}
		return a
	}}
	s := proxy.NewLogSink(&got, 4, opts)
	for _, l := range []*slog.Logger{slog.New(slog.NewJSONHandler(&want, opts)), slog.New(s.Handler())} {
		l.Debug("below the level")
		l.Info("request", "request_id", "ab12", "status", 200, "latency_ms", 1.25, "caller", "broker \"1\"\n")
		l.With("conn", 3).WithGroup("g").Warn("grouped", "err", errors.New("boom"), "n", 1, "a", 2, "b", 3, "c", 4, "d", 5)
	}
	s.Close()
	if got.String() != want.String() {
		t.Fatalf("sink wrote\n%s\nslog's JSON handler writes\n%s", got.String(), want.String())
	}
}

func TestLogSinkAccessLineIsTheLoggersLine(t *testing.T) {
	var viaLogger, viaSink bytes.Buffer
	a := &proxy.Access{Time: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), RequestID: "ab12", Route: "v1/derive-address",
		Caller: "broker \"1\"\n", Status: 200, Latency: 1250 * time.Microsecond}
	// The sink's line for an Access equals slog's JSON handler's line for
	// the same record, as a proxy without a sink logs it.
	s := proxy.NewLogSink(&viaSink, 4, nil)
	s.Access(a)
	s.Close()
	l := slog.New(slog.NewJSONHandler(&viaLogger, nil))
	l.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.String("request_id", "ab12"), slog.String("method", "v1/derive-address"),
		slog.String("caller", "broker \"1\"\n"), slog.Int("status", 200), slog.Float64("latency_ms", 1.25))
	var got, want map[string]any
	if err := json.Unmarshal(viaSink.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(viaLogger.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	if got["time"] != "2026-11-28T12:00:00Z" {
		t.Fatalf("time %v, want the request's", got["time"])
	}
	delete(got, "time")
	delete(want, "time")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sink wrote %v, logger writes %v", got, want)
	}
	quiet := proxy.NewLogSink(&viaSink, 4, &slog.HandlerOptions{Level: slog.LevelWarn})
	viaSink.Reset()
	quiet.Access(a)
	quiet.Close()
	if viaSink.Len() != 0 {
		t.Fatalf("access line written below the sink's level: %q", viaSink.String())
	}
}

func TestLogSinkAfterCloseDropsWithoutPanicking(t *testing.T) {
	w := &countingWriter{}
	s := proxy.NewLogSink(w, 2, nil)
	l := slog.New(s.Handler())
	for i := range 10 { // more than the queue holds: Close must still write them all
		l.Info("before", "i", i)
	}
	s.Close()
	l.Info("after") // a goroutine still logging at shutdown
	s.Access(&proxy.Access{Time: time.Now(), RequestID: "late"})
	s.Close() // twice is fine
	out := w.buf.String()
	if n := strings.Count(out, `"msg":"before"`); n != 10 || strings.Contains(out, "after") || strings.Contains(out, "late") {
		t.Fatalf("wrote %d of 10 lines before Close, and after it: %q", n, out)
	}
}

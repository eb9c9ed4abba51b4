package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
)

// LogSink takes log records off the request path: a handler queues a copy
// of the record and returns, and one goroutine of the sink's own formats
// the records as JSON lines and writes whatever has queued in one write.
//
// A request goroutine therefore neither formats (the JSON handler's deep
// frames would grow its fresh stack, a copy on every request) nor makes a
// system call for its access-log line; under load the log costs one write
// per batch, and when idle each line is written at once. At most depth
// records wait; beyond that logging blocks, so no line is ever dropped.
type LogSink struct {
	q    chan queuedRecord
	out  io.Writer
	buf  bytes.Buffer // the JSON handler's output; only run touches it
	json slog.Handler
	done chan struct{}
	once sync.Once
}

type queuedRecord struct {
	h slog.Handler // the JSON handler with the logger's attributes and groups
	r slog.Record
}

// maxBatch is how many bytes run gathers before it writes.
const maxBatch = 64 << 10

// NewLogSink starts a sink writing JSON lines (slog's JSON format, with
// opts) to w.
func NewLogSink(w io.Writer, depth int, opts *slog.HandlerOptions) *LogSink {
	s := &LogSink{q: make(chan queuedRecord, depth), out: w, done: make(chan struct{})}
	s.json = slog.NewJSONHandler(&s.buf, opts)
	go s.run()
	return s
}

// Handler is the slog.Handler that queues records to the sink.
func (s *LogSink) Handler() slog.Handler { return sinkHandler{s: s, h: s.json} }

func (s *LogSink) run() {
	defer close(s.done)
	for q := range s.q {
		s.buf.Reset()
		q.h.Handle(context.Background(), q.r)
	more:
		for s.buf.Len() < maxBatch {
			select {
			case q, ok := <-s.q:
				if !ok {
					break more
				}
				q.h.Handle(context.Background(), q.r)
			default:
				break more
			}
		}
		s.out.Write(s.buf.Bytes())
	}
}

// Close writes what is queued and stops the sink. Logging after Close
// panics, so close it only when nothing logs any more.
func (s *LogSink) Close() {
	s.once.Do(func() { close(s.q) })
	<-s.done
}

type sinkHandler struct {
	s *LogSink
	h slog.Handler
}

func (h sinkHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

// Handle queues a copy of r: the record's attributes are formatted later,
// on the sink's goroutine.
func (h sinkHandler) Handle(_ context.Context, r slog.Record) error {
	h.s.q <- queuedRecord{h: h.h, r: r.Clone()}
	return nil
}

func (h sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sinkHandler{s: h.s, h: h.h.WithAttrs(as)}
}

func (h sinkHandler) WithGroup(name string) slog.Handler {
	return sinkHandler{s: h.s, h: h.h.WithGroup(name)}
}

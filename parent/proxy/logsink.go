package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// LogSink takes log records off the request path: a handler queues a copy
// of the record and returns, and one goroutine of the sink's own formats
// the records as JSON lines and writes whatever has queued in one write.
//
// A request goroutine therefore neither formats (the JSON handler's deep
// frames would grow its fresh stack, a copy on every request) nor makes a
// system call for its access-log line. A line that arrives after a quiet
// spell is written at once; after each write the sink waits out a linger
// before it looks again, and whatever queued meanwhile goes out in the
// next write. So under load the log costs about one write and one wake-up
// per linger, not one per request: an Info line (every access line)
// queued while the sink lingers wakes nobody. A warning or an error cuts
// the linger short, so the lines an operator needs most are written as
// they come, and so does a queue past half full. At most depth records
// wait; beyond that logging blocks, so no line is ever dropped.
type LogSink struct {
	q chan *queuedRecord
	// linger starts a linger: logLinger on the clock, or one a test drives.
	linger  func() <-chan time.Time
	hurry   chan struct{} // ends the linger: a warning, or a queue past half full
	out     io.Writer
	buf     bytes.Buffer // the JSON handler's output; only run touches it
	json    slog.Handler
	closing chan struct{} // closed by Close; q is never closed
	done    chan struct{} // closed when run has written the last batch
	once    sync.Once
}

// queuedRecord is a record for a handler, or an access-log line. The queue
// holds pointers: a request goroutine copies a word into it, not a record,
// and its stack stays shallow.
type queuedRecord struct {
	h slog.Handler // the JSON handler with the logger's attributes and groups
	r slog.Record
	a *Access
}

// Access is one access-log line.
type Access struct {
	Time      time.Time
	RequestID string
	Route     string
	Caller    string
	Status    int
	Latency   time.Duration
}

// record is the access line as a record, the same whichever way it is logged.
func (a *Access) record() slog.Record {
	rec := slog.NewRecord(a.Time, slog.LevelInfo, "request", 0)
	rec.AddAttrs(slog.String("request_id", a.RequestID), slog.String("method", a.Route), slog.String("caller", a.Caller),
		slog.Int("status", a.Status), slog.Float64("latency_ms", float64(a.Latency.Microseconds())/1000))
	return rec
}

// AccessLogger takes access-log lines.
type AccessLogger interface {
	Access(a *Access)
}

// Access queues an access-log line; the sink builds and formats its record.
func (s *LogSink) Access(a *Access) {
	if s.json.Enabled(context.Background(), slog.LevelInfo) {
		s.queue(&queuedRecord{a: a}, false)
	}
}

// queue waits for room in the queue; after Close it drops the record (a
// goroutine still logging while the process stops must not crash it). An
// urgent record, or one that leaves the queue past half full, ends the
// sink's linger.
func (s *LogSink) queue(q *queuedRecord, urgent bool) {
	select {
	case s.q <- q:
	case <-s.closing:
		return
	}
	if urgent || len(s.q) > cap(s.q)/2 {
		select {
		case s.hurry <- struct{}{}:
		default: // already told
		}
	}
}

// maxBatch is how many bytes run gathers before it writes.
const maxBatch = 64 << 10

// logLinger is how long the sink waits after a write before it looks
// again: while the output keeps up, an Info line reaches it at most this
// late, and under load about a hundred writes a second carry every line.
const logLinger = 10 * time.Millisecond

// NewLogSink starts a sink writing JSON lines (slog's JSON format, with
// opts) to w.
func NewLogSink(w io.Writer, depth int, opts *slog.HandlerOptions) *LogSink {
	return newLogSink(w, depth, opts, func() <-chan time.Time { return time.After(logLinger) })
}

// newLogSink is NewLogSink with the linger's clock given. The queue holds
// at least two records, so that half full is a queue with one in it.
func newLogSink(w io.Writer, depth int, opts *slog.HandlerOptions, linger func() <-chan time.Time) *LogSink {
	s := &LogSink{q: make(chan *queuedRecord, max(depth, 2)), linger: linger, hurry: make(chan struct{}, 1),
		out: w, closing: make(chan struct{}), done: make(chan struct{})}
	s.json = slog.NewJSONHandler(&s.buf, opts)
	go s.run()
	return s
}

// Handler is the slog.Handler that queues records to the sink.
func (s *LogSink) Handler() slog.Handler { return sinkHandler{s: s, h: s.json} }

func (s *LogSink) run() {
	defer close(s.done)
	wrote := false // the last look found lines, so the sink lingers
	for {
		var q *queuedRecord
		closing := false
		if wrote {
			select {
			case <-s.linger():
			case <-s.hurry:
			case <-s.closing:
				closing = true
			}
		} else {
			select {
			case q = <-s.q:
			case <-s.closing:
				closing = true
			}
		}
		s.buf.Reset()
		if q != nil {
			s.handle(q)
		}
		// Gather what else has queued; once closing, everything.
		for closing || s.buf.Len() < maxBatch {
			select {
			case q := <-s.q:
				s.handle(q)
				continue
			default:
			}
			break
		}
		// A full batch goes out and the next is gathered at once.
		wrote = s.buf.Len() > 0 && s.buf.Len() < maxBatch
		if s.buf.Len() > 0 {
			s.out.Write(s.buf.Bytes())
		}
		if closing {
			return
		}
	}
}

func (s *LogSink) handle(q *queuedRecord) {
	if q.a != nil {
		s.json.Handle(context.Background(), q.a.record())
		return
	}
	q.h.Handle(context.Background(), q.r)
}

// Close writes what is queued and stops the sink. Records logged after
// Close are dropped.
func (s *LogSink) Close() {
	s.once.Do(func() { close(s.closing) })
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
	h.s.queue(&queuedRecord{h: h.h, r: r.Clone()}, r.Level >= slog.LevelWarn)
	return nil
}

func (h sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sinkHandler{s: h.s, h: h.h.WithAttrs(as)}
}

func (h sinkHandler) WithGroup(name string) slog.Handler {
	return sinkHandler{s: h.s, h: h.h.WithGroup(name)}
}

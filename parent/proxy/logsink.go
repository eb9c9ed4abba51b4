package proxy

import (
	"io"
	"sync"
)

// LogSink coalesces log lines: writers queue lines and return, a goroutine
// writes whatever has queued in one write. Under load the access log costs
// one system call per batch instead of one per request; when idle each line
// is written at once. At most depth lines wait; beyond that Write blocks.
type LogSink struct {
	out  chan []byte
	w    io.Writer
	done chan struct{}
	once sync.Once
}

// NewLogSink starts a sink writing to w.
func NewLogSink(w io.Writer, depth int) *LogSink {
	s := &LogSink{out: make(chan []byte, depth), w: w, done: make(chan struct{})}
	go s.run()
	return s
}

// Write queues a copy of p.
func (s *LogSink) Write(p []byte) (int, error) {
	s.out <- append([]byte(nil), p...)
	return len(p), nil
}

func (s *LogSink) run() {
	defer close(s.done)
	var buf []byte
	for line := range s.out {
		buf = append(buf[:0], line...)
	more:
		for len(buf) < 64<<10 {
			select {
			case l, ok := <-s.out:
				if !ok {
					break more
				}
				buf = append(buf, l...)
			default:
				break more
			}
		}
		s.w.Write(buf)
	}
}

// Close writes what is queued and stops the sink. Writes after Close panic,
// so close it only when nothing logs any more.
func (s *LogSink) Close() {
	s.once.Do(func() { close(s.out) })
	<-s.done
}

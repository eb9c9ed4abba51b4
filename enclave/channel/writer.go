package channel

import (
	"bufio"
	"net"
	"time"
)

// batchWriter owns a connection's write side: frames queued by many
// goroutines are written in order and flushed once per batch, so a busy
// connection makes one write system call for many frames instead of one
// each. A write error closes the connection; its reader then fails what is
// in flight.
type batchWriter struct {
	out  chan []byte
	done chan struct{} // closed by stop
	dead chan struct{} // closed when run returns
}

func newBatchWriter(conn net.Conn, depth int) *batchWriter {
	w := &batchWriter{out: make(chan []byte, depth), done: make(chan struct{}), dead: make(chan struct{})}
	go w.run(conn)
	return w
}

func (w *batchWriter) run(conn net.Conn) {
	defer close(w.dead)
	bw := bufio.NewWriterSize(conn, 64<<10)
	for {
		var b []byte
		select {
		case b = <-w.out:
		case <-w.done:
			return
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		failed := false
		for {
			if _, err := bw.Write(b); err != nil {
				failed = true
				break
			}
			select {
			case b = <-w.out:
				continue
			default:
			}
			break
		}
		if failed || bw.Flush() != nil {
			conn.Close()
			return
		}
	}
}

// send queues a frame; it blocks only when depth frames are already queued.
// It reports false once the writer has stopped.
func (w *batchWriter) send(b []byte) bool {
	select {
	case w.out <- b:
		return true
	case <-w.done:
		return false
	case <-w.dead:
		return false
	}
}

// stop ends the writer; frames still queued are dropped.
func (w *batchWriter) stop() { close(w.done) }

package channel

import (
	"bufio"
	"net"
	"runtime"
	"sync/atomic"
	"time"
)

// batchWriter owns a connection's write side: frames queued by many
// goroutines are written in order and flushed once per batch, so a busy
// connection makes one write system call for many frames instead of one
// each. A write error closes the connection; its reader then fails what is
// in flight. A batch that has not been written within WriteTimeout of its
// start (the peer stopped reading, or reads too slowly to keep up) is a
// write error.
//
// A frame queued is given back once it is written or dropped: its bytes to
// the server's budget of held bytes, its slot to the semaphore it took one
// from. So what a peer that stops reading makes the writer hold is bounded
// by those: the queue never holds more frames than slots were taken.
type batchWriter struct {
	// yield: let the goroutines ready to run queue their frames before
	// each batch is written (see run).
	yield bool
	out   chan outFrame
	held  *atomic.Int64 // the budget the frames' held bytes are given back to; nil if none
	done  chan struct{} // closed by stop
	dead  chan struct{} // closed when run returns
}

// outFrame is a frame queued for writing and what it holds until written.
type outFrame struct {
	b    []byte
	held int64         // bytes of the budget held for the frame
	slot chan struct{} // a semaphore a slot was taken from for the frame; nil if none
}

func newBatchWriter(conn net.Conn, depth int, held *atomic.Int64, yield bool) *batchWriter {
	w := &batchWriter{yield: yield, out: make(chan outFrame, depth), held: held, done: make(chan struct{}), dead: make(chan struct{})}
	go w.run(conn)
	return w
}

func (w *batchWriter) run(conn net.Conn) {
	defer close(w.dead)
	bw := bufio.NewWriterSize(conn, 64<<10)
	for {
		var f outFrame
		select {
		case f = <-w.out:
		case <-w.done:
			return
		}
		// Let the goroutines ready to run queue their frames first, so
		// they share this write. At one P the writer would otherwise run
		// as soon as each frame is queued (a send readies it to run next)
		// and write every frame alone. With nothing else ready to run,
		// this returns at once; with others, the batch waits for them.
		if w.yield {
			runtime.Gosched()
		}
		conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
		var err error
		for {
			_, err = bw.Write(f.b)
			// Written (into the buffer or the socket) or not, the frame
			// is done with.
			w.release(f)
			if err != nil {
				break
			}
			select {
			case f = <-w.out:
				continue
			default:
			}
			break
		}
		if err != nil || bw.Flush() != nil {
			conn.Close()
			return
		}
	}
}

// release gives back what f holds.
func (w *batchWriter) release(f outFrame) {
	if f.held != 0 && w.held != nil {
		w.held.Add(-f.held)
	}
	if f.slot != nil {
		<-f.slot
	}
}

// send queues a frame; it blocks only when depth frames are already queued.
// It reports false once the writer has stopped, having given back what the
// frame holds.
func (w *batchWriter) send(f outFrame) bool { return w.sendWithin(nil, f) }

// sendWithin is send that also gives up, reporting false, once done is
// closed (a nil done never is).
func (w *batchWriter) sendWithin(done <-chan struct{}, f outFrame) bool {
	select {
	case w.out <- f:
		return true
	case <-w.done:
	case <-w.dead:
	case <-done:
	}
	w.release(f)
	return false
}

// stop ends the writer; frames still queued are dropped. It must be called
// once no more frames are sent: what they hold is given back.
func (w *batchWriter) stop() {
	close(w.done)
	for {
		select {
		case f := <-w.out:
			w.release(f)
		default:
			return
		}
	}
}

package channel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFrameTimeout marks a frame that began to arrive and did not complete
// within the frame timeout.
var ErrFrameTimeout = errors.New("channel: frame incomplete past its deadline")

// FrameReader reads frames from one connection. Its buffer grows with the
// bytes that arrive, never ahead of them to what a length prefix declares,
// and a buffer grown for a large frame is given back once that frame is
// read.
// A frame whose first byte has arrived must complete within the timeout; a
// connection idle between frames waits as long as it likes.
type FrameReader struct {
	r        io.Reader
	deadline interface{ SetReadDeadline(time.Time) error } // nil if r has none
	timeout  time.Duration
	buf      []byte // buf[start:end] is read and not yet consumed
	start    int
	end      int
	small    *[]byte // the reader's own buffer of readBuffer bytes, once it has one
	large    *[]byte // buf, when it is a larger buffer
	err      error   // from r, returned once the buffered bytes are used up
	spent    error   // what ended the reader
	armed    bool    // a read deadline is set on r
	// last is when the last frame was read, stalled when the frame being
	// read began waiting for more bytes (0 if it is not), both on the clock
	// of [activity]: the server reads them to choose which connection to
	// close when it has too many.
	last, stalled atomic.Int64
}

// NewFrameReader reads frames from r. If r has a SetReadDeadline method
// (a net.Conn does) and timeout is positive, a frame that takes longer than
// timeout to arrive once it has begun fails with ErrFrameTimeout.
func NewFrameReader(r io.Reader, timeout time.Duration) *FrameReader {
	fr := &FrameReader{r: r, timeout: timeout}
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok && timeout > 0 {
		fr.deadline = d
	}
	return fr
}

// ReadFrame reads, decodes and validates the next frame. After an error
// the reader is spent (a length-prefixed stream cannot resynchronise): it
// has given its buffers back and returns that error again.
func (fr *FrameReader) ReadFrame() (*Frame, error) {
	f, _, err := fr.readCall(nil)
	return f, err
}

// readCall reads the next frame, as ReadFrame does, but first asks admit,
// if set, whether to take a frame of its size (length prefix included). A
// frame admit refuses is not decoded (nothing of it is kept): readCall
// returns its ID alone, read from its head, and a nil frame. A frame that
// is not a call fails with ErrFrame.
func (fr *FrameReader) readCall(admit func(size int) bool) (f *Frame, refused uint64, err error) {
	if fr.spent != nil {
		return nil, 0, fr.spent
	}
	if err := fr.fill(4); err != nil {
		return nil, 0, fr.spend(err)
	}
	n := binary.BigEndian.Uint32(fr.buf[fr.start:])
	if n == 0 || n > MaxFrame {
		return nil, 0, fr.spend(fmt.Errorf("%w: length %d", ErrFrame, n))
	}
	if err := fr.fill(4 + int(n)); err != nil {
		return nil, 0, fr.spend(err)
	}
	b := fr.buf[fr.start+4 : fr.start+4+int(n)]
	if admit != nil && !admit(4+int(n)) {
		var h frameHead
		err = headMode.Unmarshal(b, &h)
		fr.start += 4 + int(n)
		fr.done()
		if err != nil || h.Type != TypeCall {
			return nil, 0, fr.spend(fmt.Errorf("%w: refused frame of type %d: %v", ErrFrame, h.Type, err))
		}
		return nil, h.ID, nil
	}
	f, err = Unmarshal(b)
	fr.start += 4 + int(n)
	fr.done()
	if err != nil {
		return nil, 0, fr.spend(err)
	}
	if admit != nil && f.Type != TypeCall {
		return nil, 0, fr.spend(fmt.Errorf("%w: type %d from the caller", ErrFrame, f.Type))
	}
	return f, 0, nil
}

// spend ends the reader with err and gives its buffers back.
func (fr *FrameReader) spend(err error) error {
	fr.spent = err
	for _, b := range []*[]byte{fr.small, fr.large} {
		if b != nil {
			buffers[len(*b)].Put(b)
		}
	}
	fr.buf, fr.small, fr.large, fr.start, fr.end = nil, nil, nil, 0, 0
	return err
}

// fill reads until need bytes of the current frame are buffered.
func (fr *FrameReader) fill(need int) error {
	for fr.end-fr.start < need {
		if fr.err != nil {
			return fr.fail(fr.err)
		}
		if fr.start == fr.end {
			fr.start, fr.end = 0, 0
		} else if fr.deadline != nil && !fr.armed {
			// The frame has begun and must wait for more bytes: from
			// now on it has the timeout to complete.
			if err := fr.deadline.SetReadDeadline(time.Now().Add(fr.timeout)); err != nil {
				return err
			}
			fr.armed = true
			fr.stalled.Store(activity.Load())
		}
		fr.makeRoom(need)
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += m
		if err != nil {
			fr.err = err
		}
	}
	return nil
}

// fail reports a read error met with part of a frame buffered, or none.
func (fr *FrameReader) fail(err error) error {
	begun := fr.end > fr.start
	switch {
	case begun && fr.armed && errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %d bytes in %s", ErrFrameTimeout, fr.end-fr.start, fr.timeout)
	case begun && err == io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

// makeRoom makes free space after buf[end] for a frame that needs need
// bytes from buf[start]: where it is if the frame fits, else by moving what
// is buffered to the front, and only when the buffer is full by moving to
// the next size (firstBuffer, readBuffer, midBuffer, bigBuffer), each at
// most growth times the one before: memory follows the bytes that came.
func (fr *FrameReader) makeRoom(need int) {
	if fr.buf == nil {
		fr.buf = make([]byte, firstBuffer)
	}
	have := fr.end - fr.start
	switch {
	case fr.start+need <= len(fr.buf):
		return // and end < start+need: there is room
	case have < len(fr.buf):
		copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start, fr.end = 0, have
		return
	}
	switch len(fr.buf) { // full, and need > have: bigBuffer is never full
	case firstBuffer:
		fr.switchTo(readBuffer)
	case readBuffer:
		fr.switchTo(midBuffer)
	default:
		fr.switchTo(bigBuffer)
	}
}

// buffers hold the buffers readers use once they have read a frame
// (readBuffer bytes) and those they grow into for a large one (midBuffer and
// bigBuffer), given back when the frame is read or the reader is spent: no
// idle connection keeps a large one, and connections that come and go, or a
// stream of large frames, allocate none.
var buffers = map[int]*sync.Pool{
	readBuffer: {New: func() any { b := make([]byte, readBuffer); return &b }},
	midBuffer:  {New: func() any { b := make([]byte, midBuffer); return &b }},
	bigBuffer:  {New: func() any { b := make([]byte, bigBuffer); return &b }},
}

// switchTo moves what is buffered to a buffer of size bytes: the reader's
// own for readBuffer, else a larger one; a larger one left behind is given
// back.
func (fr *FrameReader) switchTo(size int) {
	var b []byte
	var large *[]byte
	if size == readBuffer {
		if fr.small == nil {
			fr.small = buffers[readBuffer].Get().(*[]byte)
		}
		b = *fr.small
	} else {
		large = buffers[size].Get().(*[]byte)
		b = *large
	}
	n := copy(b, fr.buf[fr.start:fr.end])
	if fr.large != nil {
		buffers[len(*fr.large)].Put(fr.large)
	}
	fr.buf, fr.large, fr.start, fr.end = b, large, 0, n
}

// done ends a frame: the deadline is lifted, and the reader goes back to
// its own buffer of readBuffer bytes (from the first buffer, or from a
// larger one, given back), unless what follows the frame is already more
// than that.
func (fr *FrameReader) done() {
	if fr.armed {
		fr.armed = false
		fr.stalled.Store(0)
		fr.deadline.SetReadDeadline(time.Time{})
	}
	fr.last.Store(activity.Load())
	if len(fr.buf) != readBuffer && fr.end-fr.start <= readBuffer {
		fr.switchTo(readBuffer)
	}
}

// ReadFrame reads one frame from r, reading no more than the frame (it is
// meant for a reader that buffers, or a test), into buf if buf is large
// enough. Like [FrameReader] it grows the buffer with the bytes that
// arrive. It returns the buffer for reuse.
func ReadFrame(r io.Reader, buf []byte) (*Frame, []byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, buf, err
	}
	n := int(binary.BigEndian.Uint32(head[:]))
	if n == 0 || n > MaxFrame {
		return nil, buf, fmt.Errorf("%w: length %d", ErrFrame, n)
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, max(growth*len(buf), readBuffer)))
			buf = append(grown[:0], buf...)
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, buf, err
		}
	}
	f, err := Unmarshal(buf)
	return f, buf, err
}

// activity is the clock connections are ranked by when a server has too
// many: a count of the connections accepted in this process, which each
// accept advances. A reader stamps each frame it reads, and a frame that
// stalls, with its value: reading it costs a frame an uncontended load,
// where a clock reading would cost more; the order is all the ranking needs.
var activity atomic.Int64

func init() { activity.Store(1) } // 0 means never

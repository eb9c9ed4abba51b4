package channel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var errStalled = errors.New("stalled")

// spyReader records the most buffer a reader offers it to read into,
// counted from the first byte it delivered.
type spyReader struct {
	r         io.Reader
	delivered int
	most      int
}

func (s *spyReader) Read(p []byte) (int, error) {
	s.most = max(s.most, s.delivered+len(p))
	n, err := s.r.Read(p)
	s.delivered += n
	return n, err
}

// TestFrameBufferGrowsAsBytesArrive: the length prefix alone allocates
// nothing near what it declares; the buffer grows with the bytes that came,
// and a reader that fails gives its buffers back.
func TestFrameBufferGrowsAsBytesArrive(t *testing.T) {
	for _, sent := range []int{0, 5, 1000, 40 << 10, 100 << 10, MaxFrame - 1} {
		in := append(binary.BigEndian.AppendUint32(nil, MaxFrame), make([]byte, sent)...)
		stalled := func() *spyReader {
			return &spyReader{r: io.MultiReader(bytes.NewReader(in), iotest.ErrReader(errStalled))}
		}
		limit := max(readBuffer, growth*(sent+4))
		spy := stalled()
		_, buf, err := ReadFrame(spy, nil)
		if !errors.Is(err, errStalled) {
			t.Fatalf("ReadFrame, %d bytes sent: %v, want the reader's error", sent, err)
		}
		if cap(buf) > limit || spy.most > limit+4 {
			t.Fatalf("ReadFrame, %d bytes of a %d-byte frame sent: buffer of %d bytes, want at most %d", sent, MaxFrame, max(cap(buf), spy.most), limit)
		}
		spy = stalled()
		fr := NewFrameReader(spy, time.Second)
		if _, err := fr.ReadFrame(); !errors.Is(err, errStalled) {
			t.Fatalf("FrameReader, %d bytes sent: %v, want the reader's error", sent, err)
		}
		if spy.most > limit {
			t.Fatalf("FrameReader, %d bytes of a %d-byte frame sent: buffer of %d bytes, want at most %d", sent, MaxFrame, spy.most, limit)
		}
		if fr.buf != nil || fr.small != nil || fr.large != nil {
			t.Fatalf("FrameReader, %d bytes sent: a failed reader keeps buffers of %d bytes", sent, cap(fr.buf))
		}
		if _, again := fr.ReadFrame(); !errors.Is(again, errStalled) {
			t.Fatalf("FrameReader read again after failing: %v, want the same error", again)
		}
	}
}

// TestLargeBufferIsDroppedAfterUse: a buffer grown for a large frame is not
// kept by a connection that goes idle.
func TestLargeBufferIsDroppedAfterUse(t *testing.T) {
	large, err := AppendFrame(nil, &Frame{Type: TypeCall, ID: 1, Route: "v1/x", Body: make([]byte, MaxBody)})
	if err != nil {
		t.Fatal(err)
	}
	small, err := AppendFrame(nil, &Frame{Type: TypeCall, ID: 2, Route: "v1/x", Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		stream []byte
		reads  int
	}{
		{"large_frame", large, 1},
		{"large_then_small", append(append([]byte{}, large...), small...), 2},
		{"large_then_small_in_one_read", append(append([]byte{}, large...), small...), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(tt.stream), time.Second)
			for range tt.reads {
				if _, err := fr.ReadFrame(); err != nil {
					t.Fatal(err)
				}
			}
			if cap(fr.buf) > readBuffer {
				t.Fatalf("buffer of %d bytes kept after the frame, want at most %d", cap(fr.buf), readBuffer)
			}
		})
	}
}

// TestLargestFrameFits: MaxFrame admits every frame Validate does, and not
// much more.
func TestLargestFrameFits(t *testing.T) {
	chain := make([][]byte, MaxChain)
	for i := range chain {
		chain[i] = make([]byte, MaxCertificate)
	}
	b, err := AppendFrame(nil, &Frame{Type: TypeCall, ID: math.MaxUint64, Route: strings.Repeat("r", MaxRoute),
		Body: make([]byte, MaxBody), Chain: chain, TimeoutMS: math.MaxUint32})
	if err != nil {
		t.Fatalf("the largest valid call: %v", err)
	}
	if n := len(b) - 4; n > MaxFrame || MaxFrame-n > 128 {
		t.Fatalf("the largest valid call is %d bytes, MaxFrame %d", n, MaxFrame)
	}
	if _, err := NewFrameReader(bytes.NewReader(b), time.Second).ReadFrame(); err != nil {
		t.Fatalf("reading the largest valid call: %v", err)
	}
	// The reader's sizes grow by at most growth at once, and the last holds
	// the largest frame.
	sizes := []int{firstBuffer, readBuffer, midBuffer, bigBuffer}
	for i := 2; i < len(sizes); i++ {
		if sizes[i] <= sizes[i-1] || sizes[i] > growth*sizes[i-1] {
			t.Fatalf("buffer sizes %v: want each above the one before and at most %d times it", sizes, growth)
		}
	}
	if bigBuffer < 4+MaxFrame {
		t.Fatalf("bigBuffer %d does not hold a frame of %d bytes", bigBuffer, MaxFrame)
	}
}

// unixPair is the two ends of a Unix socket connection.
func unixPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestFrameTimeoutIsTyped: a frame stalled past the timeout fails with
// ErrFrameTimeout; waiting between frames does not count.
func TestFrameTimeoutIsTyped(t *testing.T) {
	const timeout = 100 * time.Millisecond
	frame, err := AppendFrame(nil, &Frame{Type: TypeCall, ID: 1, Route: "ready"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		first   []byte
		pause   time.Duration
		then    []byte
		wantErr error
	}{
		{"bad_stalled_body", frame[:6], 3 * timeout, frame[6:], ErrFrameTimeout},
		{"bad_stalled_length", frame[:2], 3 * timeout, frame[2:], ErrFrameTimeout},
		{"idle_before_the_frame", nil, 3 * timeout, frame, nil},
		{"pause_within_the_timeout", frame[:6], timeout / 4, frame[6:], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, server := unixPair(t)
			client.Write(tt.first)
			go func() {
				time.Sleep(tt.pause)
				client.Write(tt.then)
			}()
			fr := NewFrameReader(server, timeout)
			f, err := fr.ReadFrame()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadFrame: %v, want %v", err, tt.wantErr)
			}
			if err == nil && (f.Route != "ready" || fr.armed || fr.stalled.Load() != 0) {
				t.Fatalf("frame %+v, deadline armed %v", f, fr.armed)
			}
		})
	}
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzFrameReader holds the connection reader to the plain one: on any
// stream, delivered in any chunks, it reads the same frames and fails where
// it does, with a buffer that follows the bytes read.
func FuzzFrameReader(f *testing.F) {
	call, _ := AppendFrame(nil, &Frame{Type: TypeCall, ID: 1, Route: "v1/derive-address", Body: []byte("eyJ"), Chain: [][]byte{{0x30}}, TimeoutMS: 100})
	reply, _ := AppendFrame(nil, &Frame{Type: TypeReply, ID: 1, Status: 200, Body: []byte("x")})
	large, _ := AppendFrame(nil, &Frame{Type: TypeReply, ID: 2, Status: 200, Body: make([]byte, 70<<10)})
	f.Add(append(binary.BigEndian.AppendUint32(nil, MaxFrame), 0xa5, 0x01, 0x01, 0x02, 0x07), uint16(4096)) // the partial frame of issue 13
	f.Add(append(append([]byte{}, call...), reply...), uint16(1))
	f.Add(append(append(append([]byte{}, call...), large...), call...), uint16(1000))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(2))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16) {
		want := bytes.NewReader(stream)
		fr := NewFrameReader(chunkReader{bytes.NewReader(stream), int(chunk)%(70<<10) + 1}, time.Second)
		for {
			before := want.Len()
			wf, _, werr := ReadFrame(want, nil)
			frame := before - want.Len() // this frame's bytes, or those of it that came
			gf, gerr := fr.ReadFrame()
			if (werr == nil) != (gerr == nil) || errors.Is(werr, ErrFrame) != errors.Is(gerr, ErrFrame) {
				t.Fatalf("plain reader: %v, connection reader: %v", werr, gerr)
			}
			if limit := max(readBuffer, growth*max(frame, fr.end-fr.start)); cap(fr.buf) > limit {
				t.Fatalf("buffer of %d bytes for a frame of %d bytes, %d buffered", cap(fr.buf), frame, fr.end-fr.start)
			}
			if werr != nil {
				return
			}
			if wf.ID != gf.ID || wf.Route != gf.Route || !bytes.Equal(wf.Body, gf.Body) || wf.Status != gf.Status {
				t.Fatalf("frames differ: %+v, %+v", wf, gf)
			}
		}
	})
}

// FuzzRefusedFrames holds the server's reading of calls, some refused
// before they are decoded, to the plain reader: a frame admitted reads the
// same; a frame refused yields the ID of the call it is, fails with
// ErrFrame if it is a valid frame of another type, and at worst is refused
// rather than failed if it is malformed; the stream fails where it does.
func FuzzRefusedFrames(f *testing.F) {
	call, _ := AppendFrame(nil, &Frame{Type: TypeCall, ID: 7, Route: "v1/keys/status", Body: make([]byte, 4<<10), Chain: [][]byte{{0x30}}, TimeoutMS: 100})
	reply, _ := AppendFrame(nil, &Frame{Type: TypeReply, ID: 1, Status: 200, Body: []byte("x")})
	f.Add(append(append(append([]byte{}, call...), reply...), call...), uint16(1000), uint8(0b101))
	f.Add(append(append([]byte{}, call...), call[:100]...), uint16(7), uint8(0xff))
	f.Add(append(append([]byte{}, reply...), call...), uint16(64), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16, refuse uint8) {
		want := bytes.NewReader(stream)
		fr := NewFrameReader(chunkReader{bytes.NewReader(stream), int(chunk)%(70<<10) + 1}, time.Second)
		for i := 0; ; i++ {
			refused := refuse>>(i%8)&1 == 1
			var asked int
			wf, _, werr := ReadFrame(want, nil)
			gf, id, gerr := fr.readCall(func(size int) bool { asked = size; return !refused })
			switch {
			case werr != nil && !errors.Is(werr, ErrFrame):
				if gerr == nil || errors.Is(gerr, ErrFrame) {
					t.Fatalf("plain reader: %v, server reader: %v", werr, gerr)
				}
				return
			case werr != nil: // malformed: failed, or refused unread
				if gerr == nil && (!refused || gf != nil) {
					t.Fatalf("a malformed frame read as %+v (refused: %v)", gf, refused)
				}
				return
			case wf.Type != TypeCall:
				if !errors.Is(gerr, ErrFrame) {
					t.Fatalf("a frame of type %d from the caller: %v, want ErrFrame", wf.Type, gerr)
				}
				return
			case gerr != nil:
				t.Fatalf("a valid call (refused: %v): %v", refused, gerr)
			case asked <= 4:
				t.Fatalf("admit asked about %d bytes", asked)
			case refused && (gf != nil || id != wf.ID):
				t.Fatalf("refused call %d: frame %+v, id %d", wf.ID, gf, id)
			case !refused && (gf == nil || gf.ID != wf.ID || gf.Route != wf.Route || !bytes.Equal(gf.Body, wf.Body)):
				t.Fatalf("admitted call differs: %+v, %+v", gf, wf)
			}
		}
	})
}

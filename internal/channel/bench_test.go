package channel_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

func benchFrame() *channel.Frame {
	return &channel.Frame{Type: channel.TypeCall, ID: 123456, Route: "dev/sign-message",
		Body: bytes.Repeat([]byte("e"), 700), Chain: [][]byte{bytes.Repeat([]byte{0x30}, 600)}, TimeoutMS: 10000}
}

func BenchmarkAppendFrame(b *testing.B) {
	f := benchFrame()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = channel.AppendFrame(buf[:0], f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalFrame(b *testing.B) {
	enc, _ := channel.AppendFrame(nil, benchFrame())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := channel.Unmarshal(enc[4:]); err != nil {
			b.Fatal(err)
		}
	}
}

// loopReader yields data over and over, at most chunk bytes a read, as a
// socket delivering a busy peer's batches would.
type loopReader struct {
	data  []byte
	off   int
	chunk int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), r.chunk)], r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// frameStream is k encodings of f back to back.
func frameStream(b *testing.B, f *channel.Frame, k int) []byte {
	var s []byte
	for range k {
		var err error
		if s, err = channel.AppendFrame(s, f); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// benchReadFrames reads frames the way the server's connection reader does.
func benchReadFrames(b *testing.B, r io.Reader) {
	read := channel.NewFrameReader(r, channel.DefaultFrameTimeout).ReadFrame
	b.ReportAllocs()
	for b.Loop() {
		if _, err := read(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadFrame(b *testing.B) {
	large := benchFrame()
	large.Body = bytes.Repeat([]byte("e"), channel.MaxBody)
	for _, tt := range []struct {
		name string
		f    *channel.Frame
	}{{"small", benchFrame()}, {"large", large}} {
		b.Run(tt.name+"/memory", func(b *testing.B) {
			s := frameStream(b, tt.f, 64)
			b.SetBytes(int64(len(s) / 64))
			benchReadFrames(b, &loopReader{data: s, chunk: 64 << 10})
		})
		b.Run(tt.name+"/unix", func(b *testing.B) {
			s := frameStream(b, tt.f, 64)
			b.SetBytes(int64(len(s) / 64))
			dir := b.TempDir()
			ln, err := net.Listen("unix", filepath.Join(dir, "s"))
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				w, err := ln.Accept()
				if err != nil {
					return
				}
				defer w.Close()
				for {
					if _, err := w.Write(s); err != nil {
						return
					}
				}
			}()
			conn, err := net.Dial("unix", filepath.Join(dir, "s"))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			benchReadFrames(b, conn)
		})
	}
}

// BenchmarkServerCall is a round trip through a client and the server on a
// unix socket, many calls in flight: the server's hot path (reading,
// admitting, running, answering a call) at the usual size of a call.
func BenchmarkServerCall(b *testing.B) {
	dir := b.TempDir()
	addr, err := channel.ParseAddr("unix://" + filepath.Join(dir, "s"))
	if err != nil {
		b.Fatal(err)
	}
	serveWith(b, addr, &channel.Server{Handler: channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		return channel.Reply{Status: 200, Body: c.Body[:64]}
	})})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 2})
	defer c.Close()
	for c.Live() < 2 {
		time.Sleep(time.Millisecond)
	}
	f := benchFrame()
	call := &channel.Call{Route: f.Route, Body: f.Body, Chain: f.Chain}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, err := c.Call(context.Background(), call); err != nil || r.Status != 200 {
				b.Errorf("call: %v %d", err, r.Status)
				return
			}
		}
	})
}

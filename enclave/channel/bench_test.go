package channel_test

import (
	"bytes"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/channel"
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

package channel_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// readGoldenFrames reads docs/vectors/frame.txt: "@name" starts a frame,
// and the hex pairs before "#" on every other line are its bytes.
func readGoldenFrames(t *testing.T) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile("../../docs/vectors/frame.txt")
	if err != nil {
		t.Fatal(err)
	}
	frames := map[string][]byte{}
	name := ""
	for i, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "@"); ok {
			name = strings.TrimSpace(n)
			continue
		}
		data, _, _ := strings.Cut(line, "#")
		for _, pair := range strings.Fields(data) {
			v, err := hex.DecodeString(pair)
			if err != nil || len(v) != 1 || name == "" {
				t.Fatalf("frame.txt line %d: %q is not a byte of a frame", i+1, pair)
			}
			frames[name] = append(frames[name], v[0])
		}
	}
	return frames
}

// TestGoldenFrames holds the frame encoding to docs/vectors/frame.txt, in
// both directions: what AppendFrame writes is the file's bytes, and the
// file's bytes read back as the frame.
func TestGoldenFrames(t *testing.T) {
	golden := readGoldenFrames(t)
	for _, tc := range []struct {
		name  string
		frame channel.Frame
	}{
		{"call", channel.Frame{Type: channel.TypeCall, ID: 7, Route: "v1/derive-address", Body: []byte("a.b.c"),
			Chain: [][]byte{{0x30, 0x02, 0x05, 0x00}}, TimeoutMS: 10000}},
		{"reply", channel.Frame{Type: channel.TypeReply, ID: 7, Body: []byte("x.y.z"), Status: 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, ok := golden[tc.name]
			if !ok {
				t.Fatalf("frame.txt has no @%s", tc.name)
			}
			got, err := channel.AppendFrame(nil, &tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendFrame wrote\n%x\nframe.txt has\n%x", got, want)
			}
			back, _, err := channel.ReadFrame(bytes.NewReader(want), nil)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if !reflect.DeepEqual(*back, tc.frame) {
				t.Fatalf("frame.txt reads as %+v, want %+v", *back, tc.frame)
			}
		})
	}
	if len(golden) != 2 {
		t.Fatalf("frame.txt has %d frames, want call and reply", len(golden))
	}
}

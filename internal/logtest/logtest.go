// Package logtest checks that a value holding a secret prints nothing of
// it, through the slog handlers the binaries log with (slog's JSON handler
// with no options, as enclave/cmd/enclave and the parent's log sink use
// it, and the text handler for whoever switches) and through fmt, however it is passed: directly,
// as a struct field, in a slice, in a group, in a logger's attributes, in
// an error, and under every fmt verb.
package logtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
)

// TB is the part of testing.TB NeverLogged uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Ways logs v every way a caller might, to l.
func Ways(v any) map[string]func(l *slog.Logger) {
	field := reflect.New(reflect.StructOf([]reflect.StructField{
		{Name: "V", Type: reflect.TypeOf(v), Tag: `json:"v"`},
		{Name: "P", Type: reflect.PointerTo(reflect.TypeOf(v)), Tag: `json:"p"`},
	})).Elem()
	field.Field(0).Set(reflect.ValueOf(v))
	p := reflect.New(reflect.TypeOf(v))
	p.Elem().Set(reflect.ValueOf(v))
	field.Field(1).Set(p)
	ways := map[string]func(l *slog.Logger){
		"direct":        func(l *slog.Logger) { l.Info("m", "v", v) },
		"pointer":       func(l *slog.Logger) { l.Info("m", "v", p.Interface()) },
		"slog.Any":      func(l *slog.Logger) { l.Info("m", slog.Any("v", v)) },
		"struct_field":  func(l *slog.Logger) { l.Info("m", "s", field.Interface()) },
		"struct_ptr":    func(l *slog.Logger) { l.Info("m", "s", field.Addr().Interface()) },
		"any_field":     func(l *slog.Logger) { l.Info("m", "s", struct{ V any }{v}) },
		"slice":         func(l *slog.Logger) { l.Info("m", "s", []any{v, p.Interface()}) },
		"map":           func(l *slog.Logger) { l.Info("m", "s", map[string]any{"v": v}) },
		"group":         func(l *slog.Logger) { l.Info("m", slog.Group("g", "v", v, slog.Group("h", "p", p.Interface()))) },
		"with":          func(l *slog.Logger) { l.With("v", v).Info("m") },
		"with_group":    func(l *slog.Logger) { l.WithGroup("g").Info("m", "v", v) },
		"error":         func(l *slog.Logger) { l.Error("m", "err", fmt.Errorf("failed with %v", v)) },
		"log_attrs":     func(l *slog.Logger) { l.LogAttrs(context.Background(), slog.LevelInfo, "m", slog.Any("v", v)) },
		"message_print": func(l *slog.Logger) { l.Info(fmt.Sprint(v, p.Interface(), field.Interface())) },
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		ways["fmt_"+verb] = func(l *slog.Logger) {
			l.Info(fmt.Sprintf(verb+" "+verb+" "+verb, v, p.Interface(), field.Interface()))
		}
	}
	return ways
}

// Forms are the encodings a secret (of 8 bytes or more) could appear in.
func Forms(secret []byte) [][]byte {
	return [][]byte{
		secret,
		[]byte(hex.EncodeToString(secret)),
		[]byte(strings.ToUpper(hex.EncodeToString(secret))),
		[]byte(base64.StdEncoding.EncodeToString(secret)),
		[]byte(base64.RawStdEncoding.EncodeToString(secret)),
		[]byte(base64.RawURLEncoding.EncodeToString(secret)),
		[]byte(strings.Trim(fmt.Sprint(secret), "[]")), // fmt's []byte
		// An expanded key (an AES key schedule) holds the key as 32-bit
		// words, which fmt prints in decimal.
		fmt.Appendf(nil, "%d %d", binary.BigEndian.Uint32(secret), binary.BigEndian.Uint32(secret[4:])),
		fmt.Appendf(nil, "%d %d", binary.LittleEndian.Uint32(secret), binary.LittleEndian.Uint32(secret[4:])),
		// A big.Int (an ECDSA scalar) printed as a struct shows its
		// 64-bit words in decimal, least significant first.
		fmt.Appendf(nil, "[%d ", binary.BigEndian.Uint64(secret[len(secret)-8:])),
	}
}

// NeverLogged fails t if any way of logging v, through the JSON or the
// text handler, or json.Marshal of v, shows any form of any of the secrets.
func NeverLogged(t TB, v any, secrets ...[]byte) {
	t.Helper()
	for name, h := range map[string]func(w io.Writer) slog.Handler{
		"json": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		NeverLoggedThrough(t, name, func(w io.Writer) (slog.Handler, func()) { return h(w), func() {} }, v, secrets...)
	}
	if b, err := json.Marshal(v); err == nil {
		if f := find(b, forms(t, secrets)); f >= 0 {
			t.Errorf("json.Marshal shows a secret: %s", b)
		}
	}
}

// NeverLoggedThrough is NeverLogged through the handler newHandler makes
// (a binary's own), whose flush returns once it has written everything.
func NeverLoggedThrough(t TB, name string, newHandler func(w io.Writer) (h slog.Handler, flush func()), v any, secrets ...[]byte) {
	t.Helper()
	all := forms(t, secrets)
	for wname, way := range Ways(v) {
		var buf lockedBuffer
		h, flush := newHandler(&buf)
		way(slog.New(h))
		flush()
		out := buf.bytes()
		if len(out) == 0 {
			t.Fatalf("%s/%s logged nothing", name, wname)
		}
		if find(out, all) >= 0 {
			t.Errorf("%s/%s shows a secret: %s", name, wname, out)
		}
	}
}

func forms(t TB, secrets [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	for i, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("secret %d of %d bytes: too short to search for", i, len(s))
		}
		out = append(out, Forms(s)...)
	}
	return out
}

func find(b []byte, forms [][]byte) int {
	for i, f := range forms {
		if bytes.Contains(b, f) {
			return i
		}
	}
	return -1
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

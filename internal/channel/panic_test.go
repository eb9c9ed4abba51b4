package channel_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// syncBuffer is a log destination the workers may write concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPanickingHandlerDoesNotStopTheServer: a handler that panics, on a
// worker and on a dedicated route, gets its call an unsigned internal
// reply; the process, the connection and the workers go on serving.
func TestPanickingHandlerDoesNotStopTheServer(t *testing.T) {
	const secret = "do-not-log-this-body"
	var logs syncBuffer
	h := channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		if strings.HasSuffix(c.Route, "/crash") {
			panic(string(c.Body))
		}
		return echo(ctx, c)
	})
	addr := unixAddr(t)
	serveWith(t, addr, &channel.Server{Handler: h, Workers: 1, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Dedicated: func(route string) bool { return strings.HasPrefix(route, "io/") }})
	c := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	defer c.Close()
	waitLive(t, c, 1)
	for _, route := range []string{"v1/crash", "io/crash", "v1/crash"} {
		r, err := c.Call(context.Background(), &channel.Call{Route: route, Body: []byte(secret)})
		if err != nil {
			t.Fatalf("%s: %v", route, err)
		}
		if r.Status != 500 || !bytes.Equal(r.Body, channel.Internal.Body) {
			t.Fatalf("%s: reply %d %s, want the internal reply", route, r.Status, r.Body)
		}
		r, err = c.Call(context.Background(), &channel.Call{Route: "v1/x", Body: []byte("ok")})
		if err != nil || r.Status != 200 {
			t.Fatalf("the call after %s: %v %d", route, err, r.Status)
		}
	}
	if got := logs.String(); strings.Count(got, "channel call panicked") != 3 || !strings.Contains(got, "panic_test.go:") || strings.Contains(got, secret) {
		t.Fatalf("log, want three lines with a stack and no body:\n%s", got)
	}
}

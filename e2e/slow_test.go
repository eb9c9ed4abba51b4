package e2e

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// TestSlowEnclave puts the real parent in front of an enclave that never
// answers in time (a stand-in speaking the real channel protocol). Every
// request ends within the parent's deadline with 504 or, beyond the
// concurrency bound, 503; nothing queues without bound.
func TestSlowEnclave(t *testing.T) {
	skipMemoryBoundUnderRace(t)
	dir := t.TempDir()
	if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "slow.sock")
	addr, _ := channel.ParseAddr("unix://" + sock)
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&channel.Server{Handler: channel.HandlerFunc(func(ctx context.Context, c *channel.Call) channel.Reply {
		if c.Route == "ready" {
			return channel.Reply{Status: 200, Body: []byte(`{"ready":true}`)}
		}
		<-ctx.Done() // slower than any deadline
		return channel.Reply{Status: 504, Body: []byte(`{"error":"timeout"}`)}
	})}).Serve(ctx, ln)

	e := &env{t: t, dir: dir, sock: sock}
	e.startParent("unix://"+sock, "--timeout", "500ms", "--max-concurrent", "32")
	c := e.httpClient("broker")
	c.Transport.(*http.Transport).MaxConnsPerHost = 0
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var slowest time.Duration
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := c.Post(e.parent+"/v1/derive-address", "application/jose", bytes.NewReader([]byte("x.y.z")))
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[0]++
				return
			}
			resp.Body.Close()
			codes[resp.StatusCode]++
			slowest = max(slowest, d)
		}()
	}
	wg.Wait()
	if codes[504] == 0 || codes[503] == 0 || codes[504]+codes[503] != 200 {
		t.Fatalf("answers by status: %v, want only 504 (deadline) and 503 (over the bound)", codes)
	}
	if slowest > 3*time.Second {
		t.Fatalf("the slowest answer took %s with a 500ms deadline", slowest)
	}
	if rss := parentRSS(t, e); rss > 128 {
		t.Fatalf("parent RSS %.1f MiB after the flood, bound 128 MiB", rss)
	}
}

// parentRSS reads the parent's resident set in MiB.
func parentRSS(t *testing.T, e *env) float64 {
	t.Helper()
	rss, err := rssMiB(e.parentP.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}

package proxy_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nitro-signer/nitro-signer/parent/proxy"
)

type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func TestLogSinkKeepsEveryLineInOrderPerWriter(t *testing.T) {
	w := &countingWriter{}
	s := proxy.NewLogSink(w, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(s, "g%d line %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	s.Close()
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	next := map[string]int{}
	for _, l := range lines {
		var g string
		var i int
		if _, err := fmt.Sscanf(l, "%s line %d", &g, &i); err != nil || next[g] != i {
			t.Fatalf("line %q out of order or torn", l)
		}
		next[g]++
	}
	if w.writes >= 4000 {
		t.Logf("no coalescing happened (%d writes); fine on an idle machine", w.writes)
	}
}

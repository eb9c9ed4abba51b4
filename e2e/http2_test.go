package e2e

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParentMultiplexesCallsOnOneHTTP2Connection: a caller's many calls in
// flight at once share one HTTP/2 connection, and every one is answered
// over HTTP/2: what a broker with hundreds of calls on one connection sees
// (and the parent's HTTP/2 is its default: docs/operations.md §7).
func TestParentMultiplexesCallsOnOneHTTP2Connection(t *testing.T) {
	e := newEnv(t)
	tr := &http.Transport{ForceAttemptHTTP2: true, MaxConnsPerHost: 1, TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: e.serverPool(), Certificates: []tls.Certificate{e.tlsCert("broker")}}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	// One call first, so the connection is up and the client has the
	// parent's SETTINGS (250 streams): before them Go's client assumes 100
	// and would open a second connection for the rest.
	warm, err := c.Get(e.parent + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, warm.Body)
	warm.Body.Close()
	if warm.ProtoMajor != 2 {
		t.Fatalf("answered over %s, want HTTP/2", warm.Proto)
	}
	const calls = 200
	var (
		wg    sync.WaitGroup
		conns sync.Map
		bad   atomic.Int64
		first sync.Once
		why   string
	)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(format string, args ...any) {
				bad.Add(1)
				first.Do(func() { why = fmt.Sprintf(format, args...) })
			}
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { conns.Store(info.Conn.LocalAddr().String(), true) }}
			nonce := hex.EncodeToString([]byte(fmt.Sprintf("http2-stream-%04d", i)))
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx(t), trace), "GET", e.parent+"/v1/attestation?nonce="+nonce, nil)
			if err != nil {
				fail("request: %v", err)
				return
			}
			resp, err := c.Do(req)
			if err != nil {
				fail("call %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				fail("call %d: reading the answer: %v", i, err)
			case resp.ProtoMajor != 2:
				fail("call %d answered over %s, want HTTP/2", i, resp.Proto)
			case resp.StatusCode != http.StatusOK || len(body) == 0:
				fail("call %d: %d with %d bytes: %.200s", i, resp.StatusCode, len(body), body)
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed; the first: %s", n, calls, why)
	}
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d calls used %d connections, want one", calls, n)
	}
}

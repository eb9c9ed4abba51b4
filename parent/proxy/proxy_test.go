package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/parent/proxy"
)

// fakeEnclave answers channel calls in process; block makes it hold them.
type fakeEnclave struct {
	block chan struct{}
	err   error
	mu    sync.Mutex
	calls []*channel.Call
}

func (f *fakeEnclave) Call(ctx context.Context, c *channel.Call) (channel.Reply, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.err != nil {
		return channel.Reply{}, f.err
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return channel.Reply{}, ctx.Err()
		}
	}
	if c.Route == "ready" {
		return channel.Reply{Status: 200, Body: []byte(`{"ready":true}`)}, nil
	}
	return channel.Reply{Status: 200, Body: []byte("eyJ.e30.sig")}, nil
}

func serve(t *testing.T, e proxy.Caller, maxConcurrent int, timeout time.Duration) (*httptest.Server, *http.Client) {
	t.Helper()
	p := proxy.New(proxy.Options{Enclave: e, MaxBody: 1024, Timeout: timeout, MaxConcurrent: maxConcurrent})
	srv := httptest.NewUnstartedServer(p)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	// The proxy reads the client chain from the handshake; a self-signed
	// client certificate is enough for these tests of its own behaviour.
	cert := srv.TLS.Certificates[0]
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	return srv, c
}

func decodeError(t *testing.T, r *http.Response) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return e.Error
}

func TestForwardsBodyAndChain(t *testing.T) {
	e := &fakeEnclave{}
	srv, c := serve(t, e, 4, time.Second)
	r, err := c.Post(srv.URL+"/v1/derive-address", "application/jose", strings.NewReader("envelope"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/jose" || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%d %v", r.StatusCode, r.Header)
	}
	call := e.calls[0]
	if call.Route != "v1/derive-address" || string(call.Body) != "envelope" || len(call.Chain) != 1 {
		t.Fatalf("forwarded %+v", call)
	}
}

func TestOverloadAnswers503WithRetryAfter(t *testing.T) {
	e := &fakeEnclave{block: make(chan struct{})}
	srv, c := serve(t, e, 1, 5*time.Second)
	first := make(chan *http.Response)
	go func() {
		r, _ := c.Post(srv.URL+"/v1/x", "application/jose", strings.NewReader("a"))
		first <- r
	}()
	waitCalls(t, e, 1)
	r, err := c.Post(srv.URL+"/v1/x", "application/jose", strings.NewReader("b"))
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 503 || r.Header.Get("Retry-After") != "1" || decodeError(t, r) != "overloaded" {
		t.Fatalf("second call: %d %v", r.StatusCode, r.Header)
	}
	close(e.block)
	if r := <-first; r == nil || r.StatusCode != 200 {
		t.Fatal("the held call did not complete")
	}
}

func TestEnclaveErrorsMapToCodes(t *testing.T) {
	for name, tc := range map[string]struct {
		e      *fakeEnclave
		status int
		code   string
	}{
		"unavailable": {&fakeEnclave{err: channel.ErrUnavailable}, 503, "enclave_unavailable"},
		"timeout":     {&fakeEnclave{block: make(chan struct{})}, 504, "timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			srv, c := serve(t, tc.e, 4, 200*time.Millisecond)
			start := time.Now()
			r, err := c.Post(srv.URL+"/v1/x", "application/jose", strings.NewReader("a"))
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != tc.status || decodeError(t, r) != tc.code {
				t.Fatalf("%d", r.StatusCode)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatal("took too long")
			}
		})
	}
}

func TestRequestShapeLimits(t *testing.T) {
	srv, c := serve(t, &fakeEnclave{}, 4, time.Second)
	for name, tc := range map[string]struct {
		method, path, body string
		status             int
		code               string
	}{
		"bad_body_too_large":   {"POST", "/v1/x", strings.Repeat("a", 2048), 413, "body_too_large"},
		"bad_route_characters": {"POST", "/v1/X..Y", "a", 404, "not_found"},
		"bad_unknown_prefix":   {"POST", "/v2/x", "a", 404, "not_found"},
		"bad_get_method_route": {"GET", "/v1/x", "", 404, "not_found"},
		"bad_attestation_hex":  {"GET", "/v1/attestation?nonce=zz", "", 400, "bad_request"},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			r, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != tc.status || decodeError(t, r) != tc.code {
				t.Fatalf("%d", r.StatusCode)
			}
		})
	}
}

func TestShutdownDrainsRequestsInFlight(t *testing.T) {
	e := &fakeEnclave{block: make(chan struct{})}
	p := proxy.New(proxy.Options{Enclave: e, MaxBody: 1024, Timeout: 5 * time.Second, MaxConcurrent: 4})
	srv := httptest.NewServer(p)
	done := make(chan int)
	go func() {
		r, err := http.Post(srv.URL+"/v1/x", "application/jose", strings.NewReader("a"))
		if err != nil {
			done <- 0
			return
		}
		r.Body.Close()
		done <- r.StatusCode
	}()
	waitCalls(t, e, 1)
	shut := make(chan error)
	go func() { shut <- srv.Config.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	close(e.block) // the call in flight finishes during the shutdown
	if code := <-done; code != 200 {
		t.Fatalf("the request in flight got %d", code)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func waitCalls(t *testing.T, e *fakeEnclave, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.mu.Lock()
		got := len(e.calls)
		e.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls reached the enclave, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAccessLogNamesEveryRequest(t *testing.T) {
	var buf syncBuffer
	p := proxy.New(proxy.Options{Enclave: &fakeEnclave{}, MaxBody: 1024, Timeout: time.Second, MaxConcurrent: 4,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	for _, tc := range []struct {
		method, path string
		status       int
		route        string
	}{
		{"POST", "/v1/derive-address", 200, "v1/derive-address"},
		{"GET", "/nowhere", 404, "other"},
	} {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader("envelope")))
		var line struct {
			Level, Msg, Method, Caller string
			RequestID                  string  `json:"request_id"`
			Status                     int     `json:"status"`
			LatencyMS                  float64 `json:"latency_ms"`
			Time                       time.Time
		}
		if err := json.Unmarshal(buf.take(), &line); err != nil {
			t.Fatalf("%s %s: access log line: %v", tc.method, tc.path, err)
		}
		if line.Level != "INFO" || line.Msg != "request" || line.Method != tc.route || line.Status != tc.status ||
			line.RequestID == "" || line.RequestID != w.Header().Get("X-Request-Id") || line.LatencyMS < 0 || time.Since(line.Time) > time.Minute {
			t.Fatalf("%s %s: access log %+v, X-Request-Id %q", tc.method, tc.path, line, w.Header().Get("X-Request-Id"))
		}
	}
	quiet := proxy.New(proxy.Options{Enclave: &fakeEnclave{}, MaxBody: 1024, Timeout: time.Second, MaxConcurrent: 4,
		Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	quiet.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	if b := buf.take(); len(b) != 0 {
		t.Fatalf("logged %q below the handler's level", b)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) take() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := bytes.Clone(b.buf.Bytes())
	b.buf.Reset()
	return out
}

func TestRequestIDsAreDistinct(t *testing.T) {
	p := proxy.New(proxy.Options{Enclave: &fakeEnclave{}, MaxBody: 1024, Timeout: time.Second, MaxConcurrent: 4})
	seen := map[string]bool{}
	for range 1000 {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
		id := w.Header().Get("X-Request-Id")
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Fatalf("request id %q: want 16 hex digits, never repeated", id)
		}
		seen[id] = true
	}
}

// The health listener serves /readyz alone, and at most a few checks at
// once: past them it answers 503 without calling the enclave.
func TestHealthListenerServesReadinessAloneAndBounded(t *testing.T) {
	e := &fakeEnclave{block: make(chan struct{})}
	p := proxy.New(proxy.Options{Enclave: e, MaxBody: 1024, Timeout: 5 * time.Second, MaxConcurrent: 64})
	srv := httptest.NewServer(p.Readyz())
	defer srv.Close()
	for _, path := range []string{"/v1/attestation?nonce=00", "/metrics", "/"} {
		r, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 404 {
			t.Fatalf("%s: %d, want 404", path, r.StatusCode)
		}
	}
	const held = 8
	done := make(chan int, held+1)
	get := func() {
		r, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			done <- 0
			return
		}
		r.Body.Close()
		done <- r.StatusCode
	}
	for range held {
		go get()
	}
	waitCalls(t, e, held)
	get() // the ninth, while eight are held in the enclave
	if code := <-done; code != 503 {
		t.Fatalf("a check past the bound: %d, want 503", code)
	}
	e.mu.Lock()
	calls := len(e.calls)
	e.mu.Unlock()
	if calls != held {
		t.Fatalf("%d calls reached the enclave, want %d", calls, held)
	}
	close(e.block)
	for range held {
		if code := <-done; code != 200 {
			t.Fatalf("a held check: %d", code)
		}
	}
}

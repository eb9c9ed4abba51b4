// Package proxy is the parent's HTTPS front: it terminates mTLS from
// callers, forwards each request's raw envelope and certificate chain to the
// enclave over the channel, and relays the enclave's answer. It decides
// nothing about a request's validity: the enclave does.
package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// Caller is the channel to the enclave, as the proxy uses it.
type Caller interface {
	Call(ctx context.Context, call *channel.Call) (channel.Reply, error)
}

// Options configure a Proxy.
type Options struct {
	Enclave Caller
	// MaxBody bounds a request body.
	MaxBody int64
	// Timeout bounds one request end to end.
	Timeout time.Duration
	// MaxConcurrent bounds requests in progress; beyond it the proxy
	// answers 503 with Retry-After at once.
	MaxConcurrent int
	Logger        *slog.Logger
	// AccessLog, if set, takes the access-log lines (a LogSink formats
	// them off the request path); otherwise they go to Logger.
	AccessLog AccessLogger
	Metrics   *Metrics
}

// Proxy is the parent's HTTP handler.
type Proxy struct {
	opts Options
	sem  chan struct{}
	mux  *http.ServeMux
}

// validRoute reports whether s is a method route, as the pattern
// ^(v1|dev)/[a-z0-9][a-z0-9/-]{0,94}$ says (TestValidRouteMatchesPattern
// holds it to that); it runs twice per request, so without regexp.
func validRoute(s string) bool {
	var rest string
	switch {
	case strings.HasPrefix(s, "v1/"):
		rest = s[3:]
	case strings.HasPrefix(s, "dev/"):
		rest = s[4:]
	default:
		return false
	}
	if len(rest) == 0 || len(rest) > 95 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '/' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// New returns the handler.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	p := &Proxy{opts: o, sem: make(chan struct{}, o.MaxConcurrent), mux: http.NewServeMux()}
	p.mux.HandleFunc("GET "+api.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	p.mux.HandleFunc("GET "+api.PathReady, p.readyz)
	p.mux.HandleFunc("GET "+api.PathAttestation, p.attestation)
	p.mux.HandleFunc("POST /v1/", p.method)
	p.mux.HandleFunc("POST /dev/", p.method)
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, api.CodeNotFound, "no such route")
	})
	return p
}

// statusWriter records the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// ServeHTTP applies the concurrency bound, then routes.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID()
	w.Header().Set("X-Request-Id", id)
	sw := &statusWriter{ResponseWriter: w, status: 200}
	route := "other"
	if rt := r.URL.Path[min(1, len(r.URL.Path)):]; validRoute(rt) || rt == "v1/attestation" || rt == "healthz" || rt == "readyz" {
		route = rt
	}
	select {
	case p.sem <- struct{}{}:
		p.opts.Metrics.inflight.Inc()
		p.mux.ServeHTTP(sw, r)
		p.opts.Metrics.inflight.Dec()
		<-p.sem
	default:
		w.Header().Set("Retry-After", "1")
		writeError(sw, api.CodeOverloaded, "parent at its concurrency limit")
	}
	elapsed := time.Since(start)
	p.opts.Metrics.observe(route, sw.status, elapsed)
	p.accessLog(r, id, route, sw.status, elapsed)
}

// accessLog logs one request. Without an AccessLog it builds the record
// itself rather than calling Logger.Info, which captures the caller's
// program counter (a stack walk, on every request) for a source the
// handler does not print.
func (p *Proxy) accessLog(r *http.Request, id, route string, status int, elapsed time.Duration) {
	a := &Access{Time: time.Now(), RequestID: id, Route: route, Caller: callerLabel(r), Status: status, Latency: elapsed}
	if p.opts.AccessLog != nil {
		p.opts.AccessLog.Access(a)
		return
	}
	if h := p.opts.Logger.Handler(); h.Enabled(r.Context(), slog.LevelInfo) {
		h.Handle(r.Context(), a.record())
	}
}

func (p *Proxy) method(w http.ResponseWriter, r *http.Request) {
	route := r.URL.Path[1:]
	if !validRoute(route) {
		writeError(w, api.CodeNotFound, "no such route")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.opts.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, api.CodeBodyTooLarge, "body over "+strconv.FormatInt(p.opts.MaxBody, 10)+" bytes")
			return
		}
		writeError(w, api.CodeBadRequest, "reading body failed")
		return
	}
	var chain [][]byte
	if r.TLS != nil { // always set behind the TLS listener; the enclave refuses an empty chain
		for _, c := range r.TLS.PeerCertificates {
			chain = append(chain, c.Raw)
		}
	}
	p.forward(w, r, &channel.Call{Route: route, Body: body, Chain: chain})
}

func (p *Proxy) attestation(w http.ResponseWriter, r *http.Request) {
	nonce, err := hex.DecodeString(r.URL.Query().Get("nonce"))
	if err != nil || len(nonce) == 0 {
		writeError(w, api.CodeBadRequest, "nonce must be hex")
		return
	}
	p.forward(w, r, &channel.Call{Route: channel.RouteAttestation, Body: nonce})
}

// Readyz answers GET /readyz alone, as the mTLS listener does: for a load
// balancer's health check, which presents no client certificate, on a
// listener of its own (the parent's --health-listen). Readiness is not a
// secret, and the parent's word about it is not trusted by any caller.
//
// It answers at most healthInFlight checks at once (a balancer sends a
// few a second) and refuses the rest 503, so the port cannot queue calls
// to the enclave.
func (p *Proxy) Readyz() http.Handler {
	slots := make(chan struct{}, healthInFlight)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathReady, func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			p.readyz(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, api.CodeOverloaded, "health checks at their limit")
		}
	})
	return mux
}

// healthInFlight bounds the health listener's checks in progress.
const healthInFlight = 8

func (p *Proxy) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), min(p.opts.Timeout, 2*time.Second))
	defer cancel()
	reply, err := p.opts.Enclave.Call(ctx, &channel.Call{Route: channel.RouteReady})
	if err != nil {
		p.opts.Metrics.ready.Set(0)
		p.callError(w, err)
		return
	}
	if reply.Status == 200 {
		p.opts.Metrics.ready.Set(1)
	} else {
		p.opts.Metrics.ready.Set(0)
	}
	p.opts.Metrics.observeReadiness(reply.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(reply.Status)
	w.Write(reply.Body)
}

// forward sends the call and relays the enclave's answer byte for byte.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, call *channel.Call) {
	ctx, cancel := context.WithTimeout(r.Context(), p.opts.Timeout)
	defer cancel()
	reply, err := p.opts.Enclave.Call(ctx, call)
	if err != nil {
		p.callError(w, err)
		return
	}
	switch {
	case call.Route == channel.RouteAttestation && reply.Status == 200:
		w.Header().Set("Content-Type", "application/cbor")
	case len(reply.Body) > 0 && reply.Body[0] == '{':
		w.Header().Set("Content-Type", "application/json") // unsigned: from outside the envelope
	default:
		w.Header().Set("Content-Type", "application/jose")
	}
	if reply.Status == 503 {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(reply.Status)
	w.Write(reply.Body)
}

func (p *Proxy) callError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, channel.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, api.CodeEnclaveUnavailable, "enclave not connected")
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, api.CodeTimeout, "enclave did not answer in time")
	case errors.Is(err, context.Canceled):
		writeError(w, api.CodeTimeout, "request canceled")
	default:
		p.opts.Logger.Error("channel call failed", "err", err)
		writeError(w, api.CodeInternal, "channel call failed")
	}
}

// writeError writes a parent-produced error: plain JSON, unauthenticated by
// nature (DESIGN §3.1).
func writeError(w http.ResponseWriter, code api.Code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code.Status())
	json.NewEncoder(w).Encode(api.ErrorBody{Error: code, Message: message})
}

// requestID names a request in the logs and the X-Request-Id header. It
// needs to be unique, not secret: 64 bits from the runtime's fast generator,
// not crypto/rand, whose DRBG would cost a stack copy on every request (its
// deep frames grow each fresh handler goroutine's stack).
func requestID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// callerLabel names the caller for the access log: the SPIFFE ID of the
// verified client certificate, else its subject.
func callerLabel(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	leaf := r.TLS.PeerCertificates[0]
	for _, u := range leaf.URIs {
		if u.Scheme == "spiffe" {
			return u.String()
		}
	}
	return leaf.Subject.CommonName
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/parent/egress"
	"github.com/nitro-signer/nitro-signer/parent/hostsvc"
	"github.com/nitro-signer/nitro-signer/parent/state"
)

// listen listens on a channel address, replacing a unix socket a previous
// run left behind.
func listen(s string) (net.Listener, channel.Addr, error) {
	addr, err := channel.ParseAddr(s)
	if err != nil {
		return nil, addr, err
	}
	if addr.Scheme == "unix" {
		os.Remove(addr.Path)
	}
	ln, err := channel.Listen(addr)
	return ln, addr, err
}

// validateState checks --state, --state-dir, --host-listen and the --s3-*
// flags: at most one store, given with --host-listen, and S3 settings
// only for an S3 store.
func (c *Config) validateState() error {
	if c.State != "" && c.StateDir != "" {
		return errors.New("--state and --state-dir name the same thing: give one")
	}
	loc := c.storeLocation()
	if (loc == "") != (c.HostListen == "") {
		return errors.New("--state (or --state-dir) and --host-listen go together")
	}
	isS3 := strings.HasPrefix(loc, "s3://")
	switch {
	case isS3:
		if _, _, err := state.ParseS3URL(loc); err != nil {
			return fmt.Errorf("--state: %w", err)
		}
	case strings.Contains(loc, "://"):
		return fmt.Errorf("--state %q is neither a directory nor an s3:// URL", loc)
	case c.S3Endpoint != "" || c.S3Region != "" || c.S3BucketOwner != "":
		return errors.New("--s3-endpoint, --s3-region and --s3-bucket-owner are for --state s3://BUCKET/PREFIX")
	}
	if c.S3Endpoint != "" {
		u, err := url.Parse(c.S3Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return errors.New("--s3-endpoint must be an http:// or https:// URL")
		}
	}
	if c.S3BucketOwner != "" && !accountID.MatchString(c.S3BucketOwner) {
		return errors.New("--s3-bucket-owner must be an AWS account id (12 digits)")
	}
	return nil
}

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

func (c *Config) storeLocation() string {
	if c.State != "" {
		return c.State
	}
	return c.StateDir
}

// openStore opens the state store the command line names.
func openStore(ctx context.Context, c *Config) (state.Store, error) {
	loc := c.storeLocation()
	if !strings.HasPrefix(loc, "s3://") {
		return state.Open(loc)
	}
	return state.OpenS3(ctx, loc, state.S3Options{
		Endpoint: c.S3Endpoint, Region: c.S3Region, ExpectedBucketOwner: c.S3BucketOwner,
	})
}

// meteredStore counts and times a store's calls, by operation and result.
type meteredStore struct {
	state.Store
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

func newMeteredStore(s state.Store, reg *prometheus.Registry) *meteredStore {
	m := &meteredStore{
		Store: s,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_parent_state_calls_total",
			Help: `Calls to the state store, by operation (list, get, put) and result (ok; not_found; exists: a put that lost its sequence to another writer; error).`,
		}, []string{"op", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signer_parent_state_call_seconds",
			Help:    "Time of the state store's calls, by operation.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op"}),
	}
	reg.MustRegister(m.calls, m.seconds)
	for _, op := range []string{"list", "get", "put"} {
		for _, r := range []string{"ok", "not_found", "exists", "error"} {
			m.calls.WithLabelValues(op, r)
		}
	}
	return m
}

// storeResult names a store call's outcome for metrics.
func storeResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, state.ErrNotFound):
		return "not_found"
	case errors.Is(err, state.ErrExists):
		return "exists"
	}
	return "error"
}

func (m *meteredStore) observe(op string, start time.Time, err error) {
	m.seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	m.calls.WithLabelValues(op, storeResult(err)).Inc()
}

func (m *meteredStore) List(ctx context.Context, after uint64, max int) ([]uint64, bool, error) {
	start := time.Now()
	seqs, more, err := m.Store.List(ctx, after, max)
	m.observe("list", start, err)
	return seqs, more, err
}

func (m *meteredStore) Get(ctx context.Context, seq uint64) ([]byte, error) {
	start := time.Now()
	b, err := m.Store.Get(ctx, seq)
	m.observe("get", start, err)
	return b, err
}

func (m *meteredStore) Put(ctx context.Context, seq uint64, b []byte) error {
	start := time.Now()
	err := m.Store.Put(ctx, seq, b)
	m.observe("put", start, err)
	return err
}

// serveHost serves the enclave's calls for sealed state and credentials.
func serveHost(ctx context.Context, c *Config, logger *slog.Logger, reg *prometheus.Registry) error {
	opened, err := openStore(ctx, c)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	store := newMeteredStore(opened, reg)
	puts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signer_parent_state_writes_total",
		Help: "Sealed keyrings the enclave asked to store, by result (ok; exists: another writer had the sequence; error).",
	}, []string{"result"})
	reg.MustRegister(puts)
	svc := &hostsvc.Service{Store: store, Logger: logger, OnPut: func(_ uint64, err error) {
		switch r := storeResult(err); r {
		case "ok", "exists":
			puts.WithLabelValues(r).Inc()
		default:
			puts.WithLabelValues("error").Inc()
		}
	}}
	if c.IMDS != "off" {
		svc.Credentials = &hostsvc.IMDS{Endpoint: c.IMDS}
	}
	// A store that cannot be read now is reported, not fatal: the enclave
	// asks again, and the store may come back.
	probeCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	oldest, _, err := store.List(probeCtx, 0, 1)
	cancel()
	if err != nil {
		logger.Error("state store unreadable", "store", store.String(), "err", err)
	}
	ln, addr, err := listen(c.HostListen)
	if err != nil {
		return fmt.Errorf("host service: %w", err)
	}
	logger.Info("host service listening", "listen", addr.String(), "store", store.String(), "oldest", oldest, "imds", c.IMDS)
	go (&channel.Server{Handler: svc, InFlight: hostproto.InFlight, Logger: logger,
		// Every host call waits on a file, S3 or IMDS.
		Dedicated: func(string) bool { return true }}).Serve(ctx, ln)
	return nil
}

// serveEgress serves the enclave's CONNECT tunnels to allowed targets.
func serveEgress(ctx context.Context, c *Config, logger *slog.Logger, reg *prometheus.Registry) error {
	tunnels := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signer_parent_egress_tunnels_total", Help: "Egress tunnels the enclave asked for, by whether the target was allowed.",
	}, []string{"allowed"})
	reg.MustRegister(tunnels)
	p := &egress.Proxy{Allow: c.egressAllow, Logger: logger, OnTunnel: func(_ string, ok bool) {
		tunnels.WithLabelValues(fmt.Sprint(ok)).Inc()
	}}
	ln, addr, err := listen(c.EgressListen)
	if err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	logger.Info("egress proxy listening", "listen", addr.String(), "allow", c.EgressAllow)
	go p.Serve(ctx, ln)
	return nil
}

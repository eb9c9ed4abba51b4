// Command parent is the nitro-signer parent-instance binary: it terminates
// mTLS from callers and forwards to the enclave. It holds no secret and
// makes no decision about a request.
//
//	parent --listen 127.0.0.1:8443 --enclave vsock://16:5000 \
//	    --tls-cert server.pem --tls-key server-key.pem --client-ca caller-ca.pem
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/procs"
	"github.com/nitro-signer/nitro-signer/parent/egress"
	"github.com/nitro-signer/nitro-signer/parent/proxy"
)

// Config is the command line.
type Config struct {
	Listen        string
	MetricsListen string
	// HealthListen, when set, serves GET /readyz alone in plain HTTP, for
	// a load balancer's health check (which presents no client
	// certificate).
	HealthListen  string
	Enclave       string
	TLSCert       string
	TLSKey        string
	ClientCA      string
	MaxBody       int64
	Timeout       time.Duration
	MaxConcurrent int
	PoolSize      int
	InFlight      int
	DrainTimeout  time.Duration
	Pprof         bool
	// State is where sealed keyrings are kept: a directory, or
	// s3://BUCKET/PREFIX. StateDir is the older spelling of a directory.
	// With HostListen it enables the enclave's host service.
	State      string
	StateDir   string
	HostListen string
	// S3Endpoint (an S3-compatible server, addressed by path), S3Region
	// and S3BucketOwner configure an s3:// State; credentials come from
	// the AWS SDK's default chain.
	S3Endpoint    string
	S3Region      string
	S3BucketOwner string
	// EgressListen and EgressAllow enable the egress proxy.
	EgressListen string
	EgressAllow  string
	egressAllow  []string // EgressAllow as Validate parsed it
	// IMDS is the instance metadata endpoint ("off" for none).
	IMDS string
}

// Validate checks the command line.
func (c *Config) Validate() error {
	if c.TLSCert == "" || c.TLSKey == "" || c.ClientCA == "" {
		return errors.New("--tls-cert, --tls-key and --client-ca are required")
	}
	if _, err := channel.ParseAddr(c.Enclave); err != nil {
		return err
	}
	if c.MaxBody < 1024 || c.MaxBody > channel.MaxBody {
		return fmt.Errorf("--max-body must be in 1024..%d", channel.MaxBody)
	}
	if c.Timeout <= 0 || c.Timeout > channel.MaxCallTimeout {
		return fmt.Errorf("--timeout must be in (0, %s]", channel.MaxCallTimeout)
	}
	if c.MaxConcurrent < 1 || c.PoolSize < 1 {
		return errors.New("--max-concurrent and --pool must be positive")
	}
	if c.InFlight < 0 || c.InFlight > channel.MaxInFlight {
		return fmt.Errorf("--in-flight must be in [0, %d] (0: %d)", channel.MaxInFlight, channel.DefaultInFlight)
	}
	if err := c.validateState(); err != nil {
		return err
	}
	for _, a := range []string{c.HostListen, c.EgressListen} {
		if a == "" {
			continue
		}
		if _, err := channel.ParseAddr(a); err != nil {
			return err
		}
	}
	allow, err := egress.ParseAllow(c.EgressAllow)
	if err != nil {
		return err
	}
	c.egressAllow = allow
	if c.EgressListen != "" && len(allow) == 0 {
		return errors.New("--egress-listen needs --egress-allow host:port[,host:port...]")
	}
	if c.IMDS != "off" && !strings.HasPrefix(c.IMDS, "http://") {
		return errors.New(`--imds must be an http:// URL or "off"`)
	}
	return nil
}

func main() {
	var c Config
	fs := flag.NewFlagSet("parent", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8443", "HTTPS (mTLS) listen address")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "127.0.0.1:9090", "Prometheus /metrics listen address (keep it on loopback)")
	fs.StringVar(&c.HealthListen, "health-listen", "", "plain-HTTP listen address serving GET /readyz alone, for a load balancer's health check; empty for none")
	fs.StringVar(&c.Enclave, "enclave", "vsock://16:5000", "enclave channel: vsock://CID:PORT, unix:///path or tcp://host:port")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "server certificate chain (PEM)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "server private key (PEM)")
	fs.StringVar(&c.ClientCA, "client-ca", "", "CA bundle that client certificates must chain to (PEM)")
	fs.Int64Var(&c.MaxBody, "max-body", 128<<10, "largest request body in bytes")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request deadline")
	fs.IntVar(&c.MaxConcurrent, "max-concurrent", 1024, "requests in progress before answering 503")
	fs.IntVar(&c.PoolSize, "pool", channel.DefaultPoolSize, "channel connections to the enclave")
	fs.IntVar(&c.InFlight, "in-flight", channel.DefaultInFlight, "calls in flight on one channel connection before the next is used (0: the default); keep it at the enclave's limits.in_flight")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "how long shutdown waits for requests in flight")
	fs.StringVar(&c.State, "state", "", "the enclave's state store of sealed keyrings: a directory, or s3://BUCKET/PREFIX; empty for none")
	fs.StringVar(&c.StateDir, "state-dir", "", "a directory of sealed keyrings (the same as --state DIR)")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "with --state s3://…: an S3-compatible server's URL (path-style addressing); empty for AWS")
	fs.StringVar(&c.S3Region, "s3-region", "", "with --state s3://…: the bucket's region; empty for the AWS SDK's (AWS_REGION, the shared config)")
	fs.StringVar(&c.S3BucketOwner, "s3-bucket-owner", "", "with --state s3://…: the AWS account that must own the bucket (sent as the expected bucket owner)")
	fs.StringVar(&c.HostListen, "host-listen", "", "where the enclave reaches the host service: vsock://4294967295:5001, unix:///path")
	fs.StringVar(&c.EgressListen, "egress-listen", "", "where the enclave reaches the egress proxy: vsock://4294967295:5002, unix:///path; empty for none")
	fs.StringVar(&c.EgressAllow, "egress-allow", "", "comma-separated host:port targets the egress proxy may reach (KMS, STS)")
	fs.StringVar(&c.IMDS, "imds", "http://169.254.169.254", `instance metadata service for the role's credentials, or "off"`)
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof on the metrics listener (the parent holds no secret)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "parent:", err)
		os.Exit(2)
	}
	tuneGC(96 << 20)
	sink := proxy.NewLogSink(os.Stderr, 4096, nil)
	logger := slog.New(sink.Handler())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	procs.WarnGODEBUG(logger)
	go procs.Adapt(ctx)
	err := run(ctx, &c, logger, sink)
	stop()
	if err != nil {
		logger.Error("parent stopped", "err", err)
	}
	sink.Close()
	if err != nil {
		os.Exit(1)
	}
}

func tlsConfig(c *Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(c.ClientCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no certificate", c.ClientCA)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

func run(ctx context.Context, c *Config, logger *slog.Logger, access proxy.AccessLogger) error {
	tlsCfg, err := tlsConfig(c)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	// go_sched_gomaxprocs_threads shows what procs.Adapt has chosen.
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/gomaxprocs:threads$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := proxy.NewMetrics(reg)
	addr, _ := channel.ParseAddr(c.Enclave)
	enclave := channel.NewClient(addr, channel.ClientOptions{
		PoolSize: c.PoolSize,
		InFlight: c.InFlight,
		OnState: func(live int) {
			metrics.Connections.Set(float64(live))
			logger.Info("enclave connections", "live", live)
		},
		OnOverdue: func() {
			logger.Warn("the enclave left a call unanswered past its deadline: its connection is closed and redialled",
				"grace", channel.DefaultAnswerGrace)
		},
	})
	defer enclave.Close()
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "signer_parent_channel_overdue_closes_total",
		Help: "Enclave connections closed because a call on them went unanswered past its deadline and the grace.",
	}, func() float64 { return float64(enclave.Overdue()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "signer_parent_channel_calls_in_flight",
		Help: "Calls sent to the enclave over the channel whose replies have not been read.",
	}, func() float64 { return float64(enclave.InFlight()) }))

	handler := proxy.New(proxy.Options{
		Enclave: enclave, MaxBody: c.MaxBody, Timeout: c.Timeout,
		MaxConcurrent: c.MaxConcurrent, Logger: logger, AccessLog: access, Metrics: metrics,
	})
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       c.Timeout + 5*time.Second,
		WriteTimeout:      c.Timeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	mln, err := net.Listen("tcp", c.MetricsListen)
	if err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go msrv.Serve(mln)
	healthAddr := ""
	if c.HealthListen != "" {
		hln, err := net.Listen("tcp", c.HealthListen)
		if err != nil {
			ln.Close()
			mln.Close()
			return err
		}
		healthAddr = hln.Addr().String()
		hsrv := &http.Server{Handler: handler.Readyz(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
			WriteTimeout: 5 * time.Second, MaxHeaderBytes: 4 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		go hsrv.Serve(hln)
		defer hsrv.Close()
	}

	if c.storeLocation() != "" {
		if err := serveHost(ctx, c, logger, reg); err != nil {
			ln.Close()
			mln.Close()
			return err
		}
	}
	if c.EgressListen != "" {
		if err := serveEgress(ctx, c, logger, reg); err != nil {
			ln.Close()
			mln.Close()
			return err
		}
	}
	logger.Info("parent serving", "listen", ln.Addr().String(), "metrics", mln.Addr().String(), "health", healthAddr, "enclave", addr.String())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		msrv.Close()
		return err
	case <-ctx.Done():
	}
	logger.Info("parent draining", "timeout", c.DrainTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer cancel()
	err = srv.Shutdown(dctx)
	msrv.Close()
	logger.Info("parent stopped serving")
	return err
}

// tuneGC trades memory the parent has for CPU: collect less often (GOGC
// 400), but never let the heap pass limit. GOGC and GOMEMLIMIT in the
// environment take precedence.
func tuneGC(limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
}

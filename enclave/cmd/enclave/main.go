// Command enclave is the nitro-signer enclave binary: it holds the master
// secrets and answers the parent over the enclave channel.
//
//	enclave --config /etc/nitro-signer/enclave.json --listen vsock://16:5000
//
// Development builds (-tags nsmsim) use the simulated NSM and a development
// master secret; see platform_sim.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/server"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/procs"
)

// version names the build in the log; set it at build time with
// -ldflags "-X main.version=v1.2.3". It is part of the binary, so two
// versions are two images with their own measurements.
var version = "dev"

// Config is the command line.
type Config struct {
	ConfigPath string
	Listen     string
	// Host is the parent's host service (state store, credentials); empty
	// means none, and the keyring cannot be sealed.
	Host string
	// Egress is the parent's egress proxy, for KMS and STS.
	Egress string
	// MaxConns bounds the channel connections the enclave keeps open.
	MaxConns int
	// SyncInterval is how often custody looks at the store (custody.Run).
	SyncInterval time.Duration
	Platform     platformFlags
}

// Validate checks the command line.
func (c *Config) Validate() error {
	if c.ConfigPath == "" {
		return errors.New("--config is required")
	}
	if _, err := channel.ParseAddr(c.Listen); err != nil {
		return err
	}
	if c.SyncInterval < 0 || (c.SyncInterval > 0 && c.SyncInterval < 100*time.Millisecond) {
		return fmt.Errorf("--sync-interval %s: want 0 or at least 100ms", c.SyncInterval)
	}
	if c.MaxConns < 1 || c.MaxConns > channel.MaxConns {
		return fmt.Errorf("--max-conns %d: want 1..%d", c.MaxConns, channel.MaxConns)
	}
	for _, a := range []string{c.Host, c.Egress} {
		if a == "" {
			continue
		}
		if _, err := channel.ParseAddr(a); err != nil {
			return err
		}
	}
	return c.Platform.validate()
}

func main() {
	var c Config
	fs := flag.NewFlagSet("enclave", flag.ContinueOnError)
	fs.StringVar(&c.ConfigPath, "config", "", "enclave configuration file (JSON)")
	fs.StringVar(&c.Listen, "listen", "vsock://4294967295:5000", "channel address: vsock://CID:PORT, unix:///path or tcp://host:port")
	fs.StringVar(&c.Host, "host", "", "the parent's host service (sealed state, credentials): vsock://3:5001 in an enclave; empty for none")
	fs.StringVar(&c.Egress, "egress", "", "the parent's egress proxy (KMS, STS): vsock://3:5002 in an enclave; empty for none")
	fs.DurationVar(&c.SyncInterval, "sync-interval", 30*time.Second, "how often to look for sealed keyrings other replicas stored (also soon after a caller names an epoch not held); 0 for only then")
	fs.IntVar(&c.MaxConns, "max-conns", channel.DefaultMaxConns, "channel connections kept open at once; a newcomer beyond them closes the least active (keep it above the parent's --pool)")
	c.Platform.register(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := c.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "enclave:", err)
		os.Exit(2)
	}
	// Collect less often (GOGC 400) within a 48 MiB heap limit; GOGC and
	// GOMEMLIMIT in the environment take precedence.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	procs.WarnGODEBUG(logger)
	go procs.Adapt(ctx)
	if err := run(ctx, &c, logger); err != nil {
		logger.Error("enclave stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c *Config, logger *slog.Logger) error {
	cfg, err := config.Load(c.ConfigPath)
	if err != nil {
		return err
	}
	if cfg.Sealing.Kind == config.SealingDev && !devSealing {
		return errors.New(`sealing.kind "dev" exists only in development builds; use "kms"`)
	}
	module, err := openNSM(&c.Platform, time.Now)
	if err != nil {
		return err
	}
	defer module.Close()
	keys := keyring.New()
	var store custody.Store
	var h *host.Client
	if c.Host != "" {
		addr, _ := channel.ParseAddr(c.Host)
		h = host.Dial(addr, logger)
		defer h.Close()
		store = h
	}
	sealer, err := openSealer(c, cfg, module, h)
	if err != nil {
		return err
	}
	if sealer == nil || store == nil {
		sealer, store = nil, nil
		logger.Warn("no state store or sealer: the keyring will not be sealed and cannot change", "sealing", cfg.Sealing.Kind, "host", c.Host)
	}
	exchanger, err := openSTS(c, cfg)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{
		Config: cfg, NSM: module, Keys: keys, Clock: time.Now, Logger: logger,
		Sealer: sealer, Store: store, PeerRoots: peerRoots(module), STS: exchanger,
	})
	if err != nil {
		return err
	}
	if err := loadKeys(ctx, &c.Platform, srv.Custody(), keys, logger); err != nil {
		return err
	}
	// Converge with the store (other replicas' rotations) from now on.
	go srv.Custody().Run(ctx, c.SyncInterval)
	addr, _ := channel.ParseAddr(c.Listen)
	if addr.Scheme == "unix" {
		os.Remove(addr.Path) // a socket left by a previous run
	}
	ln, err := channel.Listen(addr)
	if err != nil {
		return fmt.Errorf("listening on %v: %w", addr, err)
	}
	logger.Info("enclave serving", "listen", addr.String(), "signer_id", cfg.SignerID,
		"config_sha256", fmt.Sprintf("%x", cfg.Hash), "kid", srv.KeyID(), "k3_epoch", keys.Current(), "build", buildKind, "version", version)
	err = (&channel.Server{Handler: srv, InFlight: cfg.Limits.InFlight, MaxConns: c.MaxConns, Dedicated: server.WaitsOnIO, Logger: logger}).Serve(ctx, ln)
	logger.Info("enclave stopped serving")
	return err
}

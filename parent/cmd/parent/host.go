package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nitro-signer/nitro-signer/internal/channel"
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

// serveHost serves the enclave's calls for sealed state and credentials.
func serveHost(ctx context.Context, c *Config, logger *slog.Logger, reg *prometheus.Registry) error {
	store, err := state.Open(c.StateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	puts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signer_parent_state_writes_total", Help: "Sealed keyrings the enclave asked to store, by result.",
	}, []string{"result"})
	reg.MustRegister(puts)
	svc := &hostsvc.Service{Store: store, Logger: logger, OnPut: func(_ uint64, err error) {
		if err != nil {
			puts.WithLabelValues("error").Inc()
		} else {
			puts.WithLabelValues("ok").Inc()
		}
	}}
	if c.IMDS != "off" {
		svc.Credentials = &hostsvc.IMDS{Endpoint: c.IMDS}
	}
	ln, addr, err := listen(c.HostListen)
	if err != nil {
		return fmt.Errorf("host service: %w", err)
	}
	logger.Info("host service listening", "listen", addr.String(), "state_dir", c.StateDir, "imds", c.IMDS)
	go (&channel.Server{Handler: svc, InFlight: 16, Logger: logger,
		// Every host call waits on a file or on IMDS.
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

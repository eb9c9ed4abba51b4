package main

import (
	"errors"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/enclave/sts"
	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// openSTS returns the STS client v1/sts-credentials calls, or nil when the
// configuration has no sts member. STS is reached through the parent's
// egress (TLS ends here); the call is unsigned.
func openSTS(c *Config, cfg *config.Config) (service.Exchanger, error) {
	if cfg.STS == nil {
		return nil, nil
	}
	if c.Egress == "" {
		return nil, errors.New("the configuration's sts member needs --egress (STS is reached through the parent's egress proxy)")
	}
	egress, _ := channel.ParseAddr(c.Egress)
	return sts.New(sts.Options{
		Endpoint: cfg.STS.URL, Roots: cfg.STS.Roots, Region: cfg.STS.Region, Timeout: cfg.STS.Wait,
		Dial: host.EgressDialer(egress),
	})
}

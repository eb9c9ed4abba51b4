package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/seal/kmsseal"
	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// openSealer builds the sealer the configuration names; nil for "none".
func openSealer(c *Config, cfg *config.Config, module nsm.Module, h *host.Client) (seal.Sealer, error) {
	switch cfg.Sealing.Kind {
	case config.SealingNone:
		return nil, nil
	case config.SealingDev:
		return devSealer(&c.Platform)
	}
	// KMS: reached through the parent's egress, signed with the
	// credentials the parent's host service supplies.
	if c.Egress == "" || h == nil {
		return nil, errors.New("sealing.kind kms needs --egress and --host")
	}
	egress, _ := channel.ParseAddr(c.Egress)
	k := cfg.Sealing.KMS
	return kmsseal.New(kmsseal.Options{
		KeyID: k.KeyID, Region: k.Region, Endpoint: k.URL, Roots: k.Roots,
		Dial: host.EgressDialer(egress), Credentials: h.Credentials,
		Attest: func(pub []byte) ([]byte, error) {
			return module.Attest(nsm.AttestRequest{PublicKey: pub})
		},
	})
}

// unsealAtBoot unseals once before serving; when sealed keyrings exist but
// could not be opened custody.Run keeps retrying in the background, and
// readiness says why meanwhile. It returns the first attempt's error.
func unsealAtBoot(ctx context.Context, cust *custody.Custody, logger *slog.Logger) error {
	uctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := cust.Unseal(uctx)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, custody.ErrNoState):
		logger.Info("no sealed keyring: the keyring is empty until an import or a peer copy", "reason", err.Error())
	default:
		logger.Error("unsealing failed; retrying in the background", "err", err)
	}
	return err
}

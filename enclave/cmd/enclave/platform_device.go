//go:build !nsmsim

package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
)

const buildKind = "production"

// devSealing: a production build has no development sealer.
const devSealing = false

// platformFlags has nothing to configure in a production build.
type platformFlags struct{}

func (p *platformFlags) register(*flag.FlagSet) {}
func (p *platformFlags) validate() error        { return nil }

// openNSM opens /dev/nsm; without it the enclave refuses to start.
func openNSM(_ *platformFlags, _ func() time.Time) (nsm.Module, error) {
	return nsm.OpenDevice()
}

// peerRoots is nil: peers' documents must chain to the AWS root.
func peerRoots(nsm.Module) []*x509.Certificate { return nil }

// devSealer does not exist in a production build.
func devSealer(*platformFlags) (seal.Sealer, error) {
	return nil, errors.New(`sealing.kind "dev" exists only in development builds; use "kms"`)
}

// loadKeys unseals the newest sealed keyring. Until one is unsealed,
// imported or copied from a peer, a production enclave serves with no keys,
// readiness false (saying why) and every method answering signer_disabled.
func loadKeys(ctx context.Context, _ *platformFlags, cust *custody.Custody, _ *keyring.Keyring, logger *slog.Logger) error {
	unsealAtBoot(ctx, cust, logger)
	return nil
}

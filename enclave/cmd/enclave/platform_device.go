//go:build !nsmsim

package main

import (
	"flag"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
)

const buildKind = "production"

// platformFlags has nothing to configure in a production build.
type platformFlags struct{}

func (p *platformFlags) register(*flag.FlagSet) {}
func (p *platformFlags) validate() error        { return nil }

// openNSM opens /dev/nsm; without it the enclave refuses to start.
func openNSM(_ *platformFlags, _ func() time.Time) (nsm.Module, error) {
	return nsm.OpenDevice()
}

// loadKeys loads nothing: until a sealed keyring is unsealed, a production
// enclave serves with no keys, readiness false and every method answering
// signer_disabled.
func loadKeys(*platformFlags, *keyring.Keyring) error { return nil }

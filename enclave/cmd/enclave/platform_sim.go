//go:build nsmsim

package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nitro-signer/nitro-signer/api"

	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/nsm/nsmsim"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/seal/devseal"
)

const buildKind = "development (simulated NSM)"

// devSealing: development builds may seal under a local key.
const devSealing = true

// platformFlags configure the simulated NSM and the development master
// secret of a development build.
type platformFlags struct {
	stateDir string
	debug    bool
	noKeys   bool
	image    string
}

func (p *platformFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.stateDir, "state-dir", ".dev/nsm", "development state: the simulated NSM's root and the development master secret")
	fs.BoolVar(&p.debug, "debug", false, "simulate a debug-mode enclave (all PCRs zero)")
	fs.StringVar(&p.image, "sim-image", "", "file the simulated NSM measures into PCR0 and PCR2 instead of this binary (to simulate another image)")
	fs.BoolVar(&p.noKeys, "no-keys", false, "start with an empty keyring, as a production enclave before unsealing")
}

func (p *platformFlags) validate() error {
	if p.stateDir == "" {
		return errors.New("--state-dir is required")
	}
	return nil
}

// devSecretFile holds the development master secret (hex), created once.
const devSecretFile = "dev-master-secret.hex"

// PCRFile is where a development enclave writes the PCRs it attests, for
// clients to pin.
const pcrFile = "pcrs.json"

func openNSM(p *platformFlags, clock func() time.Time) (nsm.Module, error) {
	sim, err := nsmsim.Open(nsmsim.Options{StateDir: p.stateDir, Binary: p.image, Debug: p.debug, Clock: clock})
	if err != nil {
		return nil, err
	}
	if err := sim.WriteManifest(filepath.Join(p.stateDir, pcrFile)); err != nil {
		return nil, err
	}
	return sim, nil
}

// peerRoots trusts the development root for peers' documents.
func peerRoots(m nsm.Module) []*x509.Certificate {
	return []*x509.Certificate{m.(*nsmsim.Simulator).Root()}
}

// devSealer wraps data keys under dev-seal.key in the state directory.
func devSealer(p *platformFlags) (seal.Sealer, error) {
	return devseal.Load(filepath.Join(p.stateDir, devseal.KeyFile))
}

// loadKeys loads the development keyring. With a state store it unseals the
// newest sealed keyring and, when there is none, imports the development
// master secret as epoch 1 (sealed first); without one it holds the
// development secret in memory only. --no-keys skips the development secret.
func loadKeys(ctx context.Context, p *platformFlags, cust *custody.Custody, keys *keyring.Keyring, logger *slog.Logger) error {
	sealed := cust.CanChange()
	if sealed {
		err := unsealAtBoot(ctx, cust, logger)
		if p.noKeys || !errors.Is(err, custody.ErrNoState) {
			return nil
		}
	} else if p.noKeys {
		return nil
	}
	s, err := devSecret(p)
	if err != nil {
		return err
	}
	if sealed {
		_, err = cust.Import(ctx, s)
		if api.CodeOf(err) == api.CodeStateConflict {
			// Another replica imported first: its keyring is adopted (or
			// custody.Run keeps looking), and this secret is not used.
			logger.Info("another replica imported first", "reason", err.Error())
			return nil
		}
		return err
	}
	_, err = keys.Add(s)
	return err
}

// devSecret reads (or creates) the development master secret.
func devSecret(p *platformFlags) (*keyring.Secret, error) {
	raw, err := devseal.LoadOrCreateKey(filepath.Join(p.stateDir, devSecretFile))
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return keyring.NewSecret(raw)
}

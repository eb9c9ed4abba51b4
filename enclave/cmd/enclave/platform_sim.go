//go:build nsmsim

package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/nsm/nsmsim"
)

const buildKind = "development (simulated NSM)"

// platformFlags configure the simulated NSM and the development master
// secret of a development build.
type platformFlags struct {
	stateDir string
	debug    bool
	noKeys   bool
}

func (p *platformFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.stateDir, "state-dir", ".dev/nsm", "development state: the simulated NSM's root and the development master secret")
	fs.BoolVar(&p.debug, "debug", false, "simulate a debug-mode enclave (all PCRs zero)")
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
	sim, err := nsmsim.Open(nsmsim.Options{StateDir: p.stateDir, Debug: p.debug, Clock: clock})
	if err != nil {
		return nil, err
	}
	pcrs := map[string]string{}
	for i := range 3 {
		v, err := sim.DescribePCR(i)
		if err != nil {
			return nil, err
		}
		pcrs[fmt.Sprintf("pcr%d", i)] = hex.EncodeToString(v.Value)
	}
	b, _ := json.MarshalIndent(pcrs, "", "  ")
	if err := os.WriteFile(filepath.Join(p.stateDir, pcrFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return sim, nil
}

func loadKeys(p *platformFlags, keys *keyring.Keyring) error {
	if p.noKeys {
		return nil
	}
	path := filepath.Join(p.stateDir, devSecretFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, keyring.SecretSize)
		rand.Read(secret)
		b = []byte(hex.EncodeToString(secret) + "\n")
		clear(secret)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	raw, err := hex.DecodeString(string(trimSpace(b)))
	if err != nil {
		return fmt.Errorf("%s: malformed key", path)
	}
	defer clear(raw)
	s, err := keyring.NewSecret(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	_, err = keys.Add(s)
	return err
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

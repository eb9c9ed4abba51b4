package keyring_test

import (
	"bytes"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

// No keyring type prints a master secret or a derived scalar, through the
// binaries' slog handlers or fmt.
func TestSecretsNeverReachTheLog(t *testing.T) {
	raw := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c, 0xc3}, 8)
	s, err := keyring.NewSecret(raw)
	if err != nil {
		t.Fatal(err)
	}
	ring := keyring.New()
	ring.Add(s)
	o, _ := keyring.ParseOmni("0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d")
	key, err := ring.Derive(keyring.Wallet, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	scalar := bytes.Repeat([]byte{0x42, 0x24, 0x81, 0x18}, 8)
	fixed, err := keyring.NewKey(scalar)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		v       any
		secrets [][]byte
	}{
		"secret":      {*s, [][]byte{raw}},
		"keyring":     {ring, [][]byte{raw}},
		"derived_key": {key, [][]byte{raw}},
		"fixed_key":   {fixed, [][]byte{scalar}},
		"secrets":     {[]*keyring.Secret{s, s}, [][]byte{raw}},
	} {
		t.Run(name, func(t *testing.T) { logtest.NeverLogged(t, tc.v, tc.secrets...) })
	}
}

package keyring_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

func secretOf(t *testing.T, b byte) *keyring.Secret {
	t.Helper()
	s, err := keyring.NewSecret(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExtend(t *testing.T) {
	a, b, c, x := secretOf(t, 1), secretOf(t, 2), secretOf(t, 3), secretOf(t, 9)
	k := keyring.New()
	if err := k.Extend([]*keyring.Secret{a, b}); err != nil || k.Current() != 2 {
		t.Fatalf("empty keyring extended to 2: %v, current %d", err, k.Current())
	}
	for _, tc := range []struct {
		name string
		in   []*keyring.Secret
		want error
	}{
		{"fewer epochs is a rollback", []*keyring.Secret{a}, keyring.ErrRollback},
		{"a different epoch 2 diverges", []*keyring.Secret{a, x, c}, keyring.ErrDiverged},
		{"a different epoch 1 diverges", []*keyring.Secret{x, b}, keyring.ErrDiverged},
	} {
		if err := k.Extend(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if k.Current() != 2 {
			t.Fatalf("%s: a refused extension changed the keyring", tc.name)
		}
	}
	if err := k.Extend([]*keyring.Secret{a, b, c}); err != nil || k.Current() != 3 {
		t.Fatalf("extension by one epoch: %v, current %d", err, k.Current())
	}
	snap := k.Snapshot()
	if len(snap) != 3 || !snap[2].Equal(c) {
		t.Fatal("snapshot differs from the keyring")
	}
}

func TestSplitSecrets(t *testing.T) {
	a, b := secretOf(t, 1), secretOf(t, 2)
	got, err := keyring.SplitSecrets(keyring.AppendSecrets(nil, []*keyring.Secret{a, b}))
	if err != nil || len(got) != 2 || !got[0].Equal(a) || !got[1].Equal(b) {
		t.Fatalf("round trip: %v", err)
	}
	for _, n := range []int{0, 31, 33, 64 + 1, (keyring.MaxEpoch + 1) * keyring.SecretSize} {
		if _, err := keyring.SplitSecrets(make([]byte, n)); !errors.Is(err, keyring.ErrSecrets) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}

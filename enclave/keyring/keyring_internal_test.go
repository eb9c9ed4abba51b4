package keyring

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestRetryRuleAppendsCounter forces the first two expansions to count as
// invalid scalars and checks the key is the expansion with r = 2 appended.
func TestRetryRuleAppendsCounter(t *testing.T) {
	rejected := 0
	testOnlyToScalar = func(b []byte) (*secp256k1.PrivateKey, error) {
		if rejected < 2 {
			rejected++
			return nil, errors.New("invalid scalar")
		}
		return toScalar(b)
	}
	defer func() { testOnlyToScalar = toScalar }()
	k := New()
	s, _ := NewSecret(make([]byte, 32))
	k.Add(s)
	var o Omni
	o[0] = 7
	got, err := k.Derive(Wallet, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	info := append(append([]byte{1}, "agentkeys-evm-wallet"...), o[:]...)
	want, _ := hkdf.Key(sha256.New, make([]byte, 32), []byte("agentkeys-signer-v0"), string(append(info, 2)), 32)
	wantKey, _ := crypto.ToECDSA(want)
	if got.Address() != crypto.PubkeyToAddress(wantKey.PublicKey) {
		t.Fatalf("retry produced the wrong key")
	}
}

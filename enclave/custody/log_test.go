package custody_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

// Custody holds the per-boot X25519 key and the keyring: nothing of either
// reaches a log.
func TestCustodyNeverReachesTheLog(t *testing.T) {
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Repeat([]byte{0x3c, 0x5a, 0xa5, 0xc3}, 8)
	s, _ := keyring.NewSecret(raw)
	keys := keyring.New()
	keys.Add(s)
	o := custody.Options{Keys: keys, SignerID: "signer-a", X25519: x}
	logtest.NeverLogged(t, o, x.Bytes(), raw)
	logtest.NeverLogged(t, custody.New(o), x.Bytes(), raw)
}

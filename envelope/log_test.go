package envelope_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

// A caller's signing key never reaches a log, through slog's handlers or
// fmt, whichever kind of key it is.
func TestCallerCredentialsNeverReachTheLog(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := ec.Bytes()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, tc := range map[string]struct {
		c      envelope.Credentials
		secret []byte
	}{
		"ecdsa":   {envelope.Credentials{Signer: ec, Leaf: []byte("leaf certificate")}, d},
		"ed25519": {envelope.Credentials{Signer: ed, Leaf: []byte("leaf certificate")}, ed.Seed()},
	} {
		t.Run(name, func(t *testing.T) { logtest.NeverLogged(t, tc.c, tc.secret) })
	}
}

func TestResponseSignerNeverReachesTheLog(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := key.Bytes()
	s, err := envelope.NewResponseSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	logtest.NeverLogged(t, s, d)
}

package client_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

// A client's configuration holds the caller's private key: it never
// reaches a log, through slog's handlers or fmt.
func TestConfigNeverReachesTheLog(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := ec.Bytes()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, tc := range map[string]struct {
		key    any
		secret []byte
	}{
		"ecdsa":   {ec, d},
		"ed25519": {ed, ed.Seed()},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := client.Config{URL: "https://127.0.0.1:8443", SignerID: "signer-a", Clock: time.Now,
				Certificate: tls.Certificate{Certificate: [][]byte{[]byte("leaf")}, PrivateKey: tc.key}}
			logtest.NeverLogged(t, cfg, tc.secret)
		})
	}
}

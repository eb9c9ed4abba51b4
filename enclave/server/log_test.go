package server_test

import (
	"crypto/ecdh"
	"reflect"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

// The server holds the per-boot X25519 key: nothing of it reaches a log.
func TestServerNeverReachesTheLog(t *testing.T) {
	f := newFixture(t)
	// The key is unexported; the test reads it to know what to look for.
	x := (*ecdh.PrivateKey)(reflect.ValueOf(f.srv).Elem().FieldByName("x25519").UnsafePointer())
	logtest.NeverLogged(t, f.srv, x.Bytes())
}

package server

import (
	"crypto/ecdsa"
	"crypto/x509"
	"log/slog"

	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// TestOnlyReplaceMethod swaps a route's handler, to stand in for a bug.
func (s *Server) TestOnlyReplaceMethod(route string, h service.Handler) { s.methods[route] = h }

// TestOnlySetLogger replaces the logger.
func (s *Server) TestOnlySetLogger(l *slog.Logger) { s.log = l }

// TestOnlyResponseKey is the per-boot response signing key.
func (s *Server) TestOnlyResponseKey() *ecdsa.PublicKey {
	k, err := x509.ParsePKIXPublicKey(s.signer.SPKI())
	if err != nil {
		panic(err)
	}
	return k.(*ecdsa.PublicKey)
}

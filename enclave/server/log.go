package server

import (
	"fmt"
	"log/slog"
)

// The server holds the per-boot signing and X25519 keys: fmt, slog and
// JSON show the signing key's kid only.

// Format prints the kid only.
func (s *Server) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "server.Server{kid: %s, redacted}", s.signer.KeyID())
}

// LogValue logs the kid only.
func (s *Server) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", s.signer.KeyID()), slog.Bool("redacted", true))
}

// MarshalJSON writes the kid only.
func (s *Server) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"kid":%q,"redacted":true}`, s.signer.KeyID()), nil
}

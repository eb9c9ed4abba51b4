package envelope

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
)

// thumbprint names the credentials by their certificate, not their key.
func (c Credentials) thumbprint() string {
	sum := sha256.Sum256(c.Leaf)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Format prints the certificate's thumbprint only, never the key.
func (c Credentials) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "envelope.Credentials{x5t#S256: %s, redacted}", c.thumbprint())
}

// LogValue logs the certificate's thumbprint only.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("x5t#S256", c.thumbprint()), slog.Bool("redacted", true))
}

// MarshalJSON writes the certificate's thumbprint only.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"x5t#S256":%q,"redacted":true}`, c.thumbprint()), nil
}

// Format prints the kid only: the signer holds the per-boot private key.
func (s *ResponseSigner) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "envelope.ResponseSigner{kid: %s, redacted}", s.kid)
}

// LogValue logs the kid only.
func (s *ResponseSigner) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", s.kid), slog.Bool("redacted", true))
}

// MarshalJSON writes the kid only.
func (s *ResponseSigner) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"kid":%q,"redacted":true}`, s.kid), nil
}

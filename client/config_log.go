package client

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Format prints the parents' URLs and the signer id only: the
// configuration holds the caller's private key (Certificate.PrivateKey).
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "client.Config{URL: %q, Endpoints: %q, SignerID: %q, redacted}", c.URL, c.Endpoints, c.SignerID)
}

// LogValue logs the parents' URLs and the signer id only.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.Any("endpoints", c.Endpoints),
		slog.String("signer_id", c.SignerID), slog.Bool("redacted", true))
}

// MarshalJSON writes the parents' URLs and the signer id only.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"url": c.URL, "endpoints": c.Endpoints, "signer_id": c.SignerID, "redacted": true})
}

package client

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Format prints the parent's URL and the signer id only: the configuration
// holds the caller's private key (Certificate.PrivateKey).
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "client.Config{URL: %q, SignerID: %q, redacted}", c.URL, c.SignerID)
}

// LogValue logs the parent's URL and the signer id only.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.String("signer_id", c.SignerID), slog.Bool("redacted", true))
}

// MarshalJSON writes the parent's URL and the signer id only.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"url": c.URL, "signer_id": c.SignerID, "redacted": true})
}

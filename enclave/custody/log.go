package custody

import (
	"fmt"
	"log/slog"
)

// Options and Custody hold the enclave's per-boot X25519 key (and, through
// the keyring, every epoch): fmt, slog and JSON show the signer id only.

// Format prints the signer id only.
func (o Options) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "custody.Options{SignerID: %q, redacted}", o.SignerID)
}

// LogValue logs the signer id only.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.String("signer_id", o.SignerID), slog.Bool("redacted", true))
}

// MarshalJSON writes the signer id only.
func (o Options) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"signer_id":%q,"redacted":true}`, o.SignerID), nil
}

// Format prints the signer id only.
func (c *Custody) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "custody.Custody{SignerID: %q, redacted}", c.o.SignerID)
}

// LogValue logs the signer id only.
func (c *Custody) LogValue() slog.Value { return c.o.LogValue() }

// MarshalJSON writes the signer id only.
func (c *Custody) MarshalJSON() ([]byte, error) { return c.o.MarshalJSON() }

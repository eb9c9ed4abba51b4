package keyring

import (
	"fmt"
	"log/slog"
)

// Every type here that holds a secret prints a placeholder through fmt
// (Format), logs one through slog (LogValue) and writes one as JSON
// (MarshalJSON): slog's JSON handler calls MarshalJSON, not Format, on a
// value it is handed inside another.

const redacted = `"redacted"`

// LogValue logs a placeholder.
func (Secret) LogValue() slog.Value { return slog.StringValue("keyring.Secret{redacted}") }

// MarshalJSON writes a placeholder: a secret has no JSON form.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(redacted), nil }

// Format prints the number of epochs only.
func (k *Keyring) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "keyring.Keyring{epochs: %d, redacted}", k.Current())
}

// LogValue logs the number of epochs only.
func (k *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("epochs", uint64(k.Current())), slog.Bool("redacted", true))
}

// MarshalJSON writes the number of epochs only.
func (k *Keyring) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"epochs":%d,"redacted":true}`, k.Current()), nil
}

// Format prints the key's epoch only.
func (k *Key) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "keyring.Key{epoch: %d, redacted}", k.Epoch)
}

// LogValue logs the key's epoch only.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("epoch", uint64(k.Epoch)), slog.Bool("redacted", true))
}

// MarshalJSON writes the key's epoch only.
func (k *Key) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"epoch":%d,"redacted":true}`, k.Epoch), nil
}

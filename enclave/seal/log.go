package seal

import (
	"fmt"
	"log/slog"
)

// Format prints the generation and the number of epochs only.
func (k Keyring) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "seal.Keyring{generation: %d, epochs: %d, redacted}", k.Generation, len(k.Epochs))
}

// LogValue logs the generation and the number of epochs only.
func (k Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("generation", k.Generation), slog.Int("epochs", len(k.Epochs)), slog.Bool("redacted", true))
}

// MarshalJSON writes the generation and the number of epochs only.
func (k Keyring) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"generation":%d,"epochs":%d,"redacted":true}`, k.Generation, len(k.Epochs)), nil
}

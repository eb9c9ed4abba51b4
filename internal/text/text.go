// Package text holds the one helper the enclave's error messages share.
package text

// Truncate shortens attacker-supplied text quoted in an error message to 64
// bytes, so a refusal never echoes a large input.
func Truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

package config_test

import (
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// TestParseMatchesKeysExactly is issue 13 finding 7 for the configuration:
// a key in another case than its field ("Trust_Domain") or two keys equal
// under case folding ("dev_surface" and "DEV_SURFACE", the last of which
// encoding/json let win) are refused, so what a reviewer reads in the
// configuration is what the enclave runs with.
func TestParseMatchesKeysExactly(t *testing.T) {
	b := devConfig(t)
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"bad_keys_equal_under_case_folding", func(m map[string]any) { m["DEV_SURFACE"] = false }},
		{"bad_field_in_other_case", func(m map[string]any) { m["Trust_Domain"] = m["trust_domain"]; delete(m, "trust_domain") }},
		{"bad_field_in_other_case_nested", func(m map[string]any) { m["sealing"] = map[string]any{"Kind": "dev"} }},
		{"bad_field_in_other_case_kelvin", func(m map[string]any) { m["sealing"] = map[string]any{"\u212aind": "dev"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := config.Parse(edit(t, b, tc.edit)); !errors.Is(err, strictjson.ErrJSON) {
				t.Fatalf("Parse: %v, want ErrJSON", err)
			}
		})
	}
}

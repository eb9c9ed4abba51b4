package config_test

import (
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/config"
)

// TestDevSurfaceCannotServeAuditRowDigests: dev/sign-message would sign any
// row's keccak256 as v1/sign/audit-row does, without its checks; a
// configuration that serves both is refused with ErrSurfaceOverlap, and
// each alone, or both with the dev surface off, parses.
func TestDevSurfaceCannotServeAuditRowDigests(t *testing.T) {
	b := devConfig(t)
	roles := func(dev bool, r map[string][]string) []byte {
		return edit(t, b, func(m map[string]any) { m["dev_surface"] = dev; m["roles"] = r })
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"bad_one_role_both", roles(true, map[string][]string{"broker": {"dev/sign-message", "v1/sign/audit-row"}}), config.ErrSurfaceOverlap},
		{"bad_two_roles_one_each", roles(true, map[string][]string{"broker": {"dev/sign-message"}, "auditor": {"v1/sign/audit-row"}}), config.ErrSurfaceOverlap},
		{"dev_surface_off", roles(false, map[string][]string{"broker": {"dev/sign-message", "v1/sign/audit-row"}}), nil},
		{"dev_sign_message_only", roles(true, map[string][]string{"broker": {"dev/sign-message", "v1/sign/siwe"}}), nil},
		{"audit_row_with_other_dev_methods", roles(true, map[string][]string{"broker": {"dev/derive-address", "dev/sign-typed-data", "v1/sign/audit-row"}}), nil},
		{"development_config", b, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(tt.in)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Parse: %v, want %v", err, tt.want)
			}
		})
	}
}

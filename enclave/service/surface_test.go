package service_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// TestDevSignMessageHoldsSIWEToItsPolicy: dev/sign-message signs EIP-191
// of its message as v1/sign/siwe does; a message that looks like EIP-4361
// gets v1/sign/siwe's answer on both routes, and one that does not is
// signed as before.
func TestDevSignMessageHoldsSIWEToItsPolicy(t *testing.T) {
	h := newHarness(t, &config.Policy{SIWEDomains: []string{"app.example"}, ChainIDs: []uint64{1}, Skew: time.Minute})
	own := checksummed(h.wallet(0))
	other := checksummed("0x00000000000000000000000000000000000000aa")
	msg := func(domain, address, chain, extra string) string {
		return domain + " wants you to sign in with your Ethereum account:\n" + address +
			"\n\nSign in\n\nURI: https://" + domain + "\nVersion: 1\nChain ID: " + chain + "\nNonce: 0123456789\nIssued At: " +
			now.Add(-time.Minute).Format(time.RFC3339) + extra
	}
	tests := []struct {
		name    string
		message string
		want    api.Code // "" signs
	}{
		{"siwe_allowed", msg("app.example", own, "1", ""), ""},
		{"not_siwe", "hello", ""},
		{"not_siwe_32_bytes", strings.Repeat("\xab", 32), ""},
		{"bad_other_address", msg("app.example", other, "1", ""), api.CodeAddressMismatch},
		{"bad_domain", msg("evil.example", own, "1", ""), api.CodePolicyDenied},
		{"bad_chain", msg("app.example", own, "5", ""), api.CodePolicyDenied},
		{"bad_expired", msg("app.example", own, "1", "\nExpiration Time: "+now.Format(time.RFC3339)), api.CodeMessageExpired},
		{"bad_not_before", msg("app.example", own, "1", "\nNot Before: "+now.Add(time.Hour).Format(time.RFC3339)), api.CodeMessageNotYetValid},
		{"bad_issued_in_future", strings.Replace(msg("app.example", own, "1", ""), now.Add(-time.Minute).Format(time.RFC3339),
			now.Add(time.Hour).Format(time.RFC3339), 1), api.CodeIssuedInFuture},
		{"bad_lowercase_address", msg("evil.example", strings.ToLower(own), "1", ""), api.CodeInvalidSIWE},
		{"bad_header_other_case", strings.Replace(msg("evil.example", own, "1", ""), "Ethereum", "ethereum", 1), api.CodeInvalidSIWE},
		{"bad_header_other_spacing", strings.Replace(msg("evil.example", own, "1", ""), "sign in", "sign  in", 1), api.CodeInvalidSIWE},
		{"bad_prefixed", "note\n" + msg("evil.example", own, "1", ""), api.CodeInvalidSIWE},
		{"bad_trailing_newline", msg("evil.example", own, "1", "\n"), api.CodeInvalidSIWE},
		{"bad_crlf", strings.ReplaceAll(msg("evil.example", own, "1", ""), "\n", "\r\n"), api.CodeInvalidSIWE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dev api.DevSignMessageResponse
			err := h.call("dev/sign-message", map[string]any{"omni_account": omni, "message_hex": hex.EncodeToString([]byte(tt.message))}, &dev)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("dev/sign-message: %v", err)
				}
				if recoverAddress(t, service.PersonalHash([]byte(tt.message)), dev.Signature) != h.wallet(0) {
					t.Fatal("signature does not recover to the wallet")
				}
			} else {
				var e *api.Error
				if !errors.As(err, &e) || e.Code != tt.want {
					t.Fatalf("dev/sign-message: %v, want %s", err, tt.want)
				}
			}
			// v1/sign/siwe gives the same answer to the same text (a
			// message that is not SIWE is refused there as such).
			var typed api.SignSIWEResponse
			terr := h.call("v1/sign/siwe", map[string]any{"actor_omni": omni, "siwe_message": tt.message}, &typed)
			switch {
			case strings.HasPrefix(tt.name, "not_siwe"):
				wantCode(t, terr, api.CodeInvalidSIWE)
			case tt.want == "":
				if terr != nil || typed.Signature != dev.Signature {
					t.Fatalf("v1/sign/siwe: %v, signature %s, want dev's %s", terr, typed.Signature, dev.Signature)
				}
			default:
				wantCode(t, terr, tt.want)
			}
		})
	}
}

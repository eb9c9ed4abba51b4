package service

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/siwe"
)

func TestSIWEParsingVectors(t *testing.T) {
	var positive map[string]struct {
		Message string `json:"message"`
		Fields  struct {
			Domain  string `json:"domain"`
			Address string `json:"address"`
			ChainID uint64 `json:"chainId"`
			Nonce   string `json:"nonce"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "eth", "siwe", "parsing_positive.json"), &positive); err != nil {
		t.Fatal(err)
	}
	for name, c := range positive {
		t.Run("positive/"+name, func(t *testing.T) {
			m, err := CheckSIWE(c.Message)
			if err != nil {
				t.Fatalf("CheckSIWE: %v", err)
			}
			if m.Domain != c.Fields.Domain || m.Address.Hex() != c.Fields.Address || m.ChainID != c.Fields.ChainID || m.Nonce != c.Fields.Nonce {
				t.Fatalf("parsed %s %s %d %s, want %+v", m.Domain, m.Address.Hex(), m.ChainID, m.Nonce, c.Fields)
			}
		})
	}
	if len(positive) != 19 {
		t.Fatalf("%d positive vectors, want 19", len(positive))
	}
	var negative map[string]string
	if err := json.Unmarshal(testvectors.Read(t, "eth", "siwe", "parsing_negative.json"), &negative); err != nil {
		t.Fatal(err)
	}
	for reason, msg := range negative {
		t.Run("negative/"+reason, func(t *testing.T) {
			_, err := CheckSIWE(msg)
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.CodeInvalidSIWE {
				t.Fatalf("CheckSIWE: %v, want invalid_siwe_message", err)
			}
		})
	}
	if len(negative) != 29 {
		t.Fatalf("%d negative vectors, want 29", len(negative))
	}
}

// TestSIWEVerificationVectors runs the spruceid verification sets through
// the rules that apply to a signer: the time rules and the domain binding
// (as the domain allowlist). Signature and nonce cases concern verifiers of
// signatures, not the signer, and are counted as not applicable.
func TestSIWEVerificationVectors(t *testing.T) {
	var v struct {
		Cases []struct {
			File    string `json:"file"`
			Name    string `json:"name"`
			Message string `json:"eip4361_message_reconstructed"`
			Params  struct {
				Time   *string `json:"time"`
				Domain *string `json:"domain"`
				Nonce  *string `json:"nonce"`
			} `json:"verify_params"`
			Success bool `json:"expected_success"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "eth", "siwe", "expected-verification.json"), &v); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, c := range v.Cases {
		t.Run(c.File+"/"+c.Name, func(t *testing.T) {
			if strings.Contains(c.Name, "signature") || c.Params.Nonce != nil {
				t.Skip("a signature or nonce rule: applies to verifiers, not to the signer")
			}
			applied++
			m, err := CheckSIWE(c.Message)
			if err != nil {
				if c.Success {
					t.Fatalf("CheckSIWE: %v", err)
				}
				return // impossible dates are refused at parsing
			}
			at := time.Now()
			if c.Params.Time != nil {
				at, _ = time.Parse(time.RFC3339Nano, *c.Params.Time)
			}
			// The vectors are written for verifiers, which do not refuse
			// an issued-at after the check time; the signer's issued-at
			// rule is tested in TestSIWERefusalRules.
			pol := &config.Policy{Skew: 100 * 365 * 24 * time.Hour}
			if c.Params.Domain != nil {
				pol.SIWEDomains = []string{*c.Params.Domain}
			}
			s := New(Options{Policy: pol, Clock: func() time.Time { return at }})
			err = s.siwePolicy(m, m.Address)
			if (err == nil) != c.Success {
				t.Fatalf("policy: %v, want success %v", err, c.Success)
			}
		})
	}
	if applied < 8 {
		t.Fatalf("only %d verification vectors applied", applied)
	}
}

func TestSIWERefusalRules(t *testing.T) {
	base := "example.com wants you to sign in with your Ethereum account:\n0x9D85ca56217D2bb651b00f15e694EB7E713637D4\n\nstatement\n\nURI: https://example.com\nVersion: 1\nChain ID: %CHAIN%\nNonce: abcdefgh12\nIssued At: %ISSUED%%EXTRA%"
	wallet := common.HexToAddress("0x9D85ca56217D2bb651b00f15e694EB7E713637D4")
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	msg := func(chain, issued, extra string) string {
		return strings.NewReplacer("%CHAIN%", chain, "%ISSUED%", issued, "%EXTRA%", extra).Replace(base)
	}
	tests := []struct {
		name   string
		msg    string
		wallet common.Address
		policy config.Policy
		want   api.Code
	}{
		{"valid", msg("1", "2026-01-01T11:59:00Z", ""), wallet, config.Policy{}, ""},
		{"valid_allowed_by_policy", msg("8453", "2026-01-01T11:59:00Z", ""), wallet, config.Policy{SIWEDomains: []string{"EXAMPLE.com"}, ChainIDs: []uint64{8453}}, ""},
		{"bad_address_not_the_wallet", msg("1", "2026-01-01T11:59:00Z", ""), common.HexToAddress("0x01"), config.Policy{}, api.CodeAddressMismatch},
		{"bad_expired", msg("1", "2026-01-01T11:00:00Z", "\nExpiration Time: 2026-01-01T11:30:00Z"), wallet, config.Policy{}, api.CodeMessageExpired},
		{"bad_not_yet_valid", msg("1", "2026-01-01T11:00:00Z", "\nNot Before: 2026-01-01T13:00:00Z"), wallet, config.Policy{}, api.CodeMessageNotYetValid},
		{"bad_issued_in_future", msg("1", "2026-01-01T12:05:00Z", ""), wallet, config.Policy{}, api.CodeIssuedInFuture},
		{"bad_domain_not_allowed", msg("1", "2026-01-01T11:59:00Z", ""), wallet, config.Policy{SIWEDomains: []string{"other.org"}}, api.CodePolicyDenied},
		{"bad_chain_not_allowed", msg("5", "2026-01-01T11:59:00Z", ""), wallet, config.Policy{ChainIDs: []uint64{1}}, api.CodePolicyDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := CheckSIWE(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			p := tt.policy
			p.Skew = time.Minute
			err = New(Options{Policy: &p, Clock: func() time.Time { return at }}).siwePolicy(m, tt.wallet)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if api.CodeOf(err) != tt.want {
				t.Fatalf("policy: %v, want %s", err, tt.want)
			}
		})
	}
	for name, text := range map[string]string{
		"bad_not_canonical_trailing_newline": msg("1", "2026-01-01T11:59:00Z", "") + "\n",
		"bad_lowercase_address":              strings.Replace(msg("1", "2026-01-01T11:59:00Z", ""), "0x9D85ca56217D2bb651b00f15e694EB7E713637D4", "0x9d85ca56217d2bb651b00f15e694eb7e713637d4", 1),
		"bad_empty":                          "",
		"bad_too_long":                       strings.Repeat("a", siwe.MaxSize+1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CheckSIWE(text); api.CodeOf(err) != api.CodeInvalidSIWE {
				t.Fatalf("CheckSIWE: %v, want invalid_siwe_message", err)
			}
		})
	}
}

package e2e

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// newEnvWithConfig is newEnv with the generated enclave configuration
// changed by edit before the enclave starts.
func newEnvWithConfig(t *testing.T, edit func(cfg map[string]any)) *env {
	t.Helper()
	dir := t.TempDir()
	if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
		t.Fatal(err)
	}
	editConfig(t, filepath.Join(dir, "pki", devpki.EnclaveJSON), edit)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "enclave.sock")}
	if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
		t.Fatal(err)
	}
	e.startEnclave()
	e.startParent("unix://" + e.sock)
	return e
}

// withoutMethod removes method from every role.
func withoutMethod(method string) func(map[string]any) {
	return func(cfg map[string]any) {
		for role, methods := range cfg["roles"].(map[string]any) {
			var keep []any
			for _, m := range methods.([]any) {
				if m != method {
					keep = append(keep, m)
				}
			}
			cfg["roles"].(map[string]any)[role] = keep
		}
	}
}

// TestSIWEPolicyHoldsOnEveryRoute: with a SIWE policy configured, a message
// that v1/sign/siwe refuses is refused by dev/sign-message too, with the
// same code — the compatibility surface signs EIP-191 exactly as sign/siwe
// does, so signing it there would be the same signature without the
// checks. A message that only looks like EIP-4361 is refused as one.
func TestSIWEPolicyHoldsOnEveryRoute(t *testing.T) {
	e := newEnvWithConfig(t, func(cfg map[string]any) {
		withoutMethod("v1/sign/audit-row")(cfg) // see TestAuditRowSignaturesCannotBeMadeOnTheDevSurface
		cfg["policy"] = map[string]any{"siwe_domains": []string{"app.example"}, "chain_ids": []uint64{1}}
	})
	c := e.client("broker")
	wallet, err := c.DeriveAddress(ctx(t), omniHex, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	siwe := func(domain, address string, chain int, extra string) string {
		return domain + " wants you to sign in with your Ethereum account:\n" + address +
			"\n\nSign in\n\nURI: https://" + domain + "/login\nVersion: 1\nChain ID: " + itoa(chain) +
			"\nNonce: 0123456789\nIssued At: " + now.Add(-time.Minute).Format(time.RFC3339) + extra
	}
	own := common.HexToAddress(wallet.Address).Hex()
	other := common.HexToAddress("0x00000000000000000000000000000000000000aa").Hex()
	tests := []struct {
		name    string
		message string
		want    api.Code // "" signs
	}{
		{"allowed", siwe("app.example", own, 1, ""), ""},
		{"bad_other_address", siwe("app.example", other, 1, ""), api.CodeAddressMismatch},
		{"bad_domain_not_allowed", siwe("evil.example", own, 1, ""), api.CodePolicyDenied},
		{"bad_chain_not_allowed", siwe("app.example", own, 5, ""), api.CodePolicyDenied},
		{"bad_expired", siwe("app.example", own, 1, "\nExpiration Time: "+now.Add(-time.Second).Format(time.RFC3339)), api.CodeMessageExpired},
		{"bad_not_yet_valid", siwe("app.example", own, 1, "\nNot Before: "+now.Add(time.Hour).Format(time.RFC3339)), api.CodeMessageNotYetValid},
		{"bad_lowercase_address_lenient_parsers_take", siwe("evil.example", strings.ToLower(own), 1, ""), api.CodeInvalidSIWE},
		{"bad_trailing_newline", siwe("evil.example", own, 1, "\n"), api.CodeInvalidSIWE},
		{"bad_crlf", strings.ReplaceAll(siwe("evil.example", own, 1, ""), "\n", "\r\n"), api.CodeInvalidSIWE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typed, terr := c.SignSIWE(ctx(t), omniHex, tt.message)
			dev, derr := c.DevSignMessage(ctx(t), omniHex, "0x"+hex.EncodeToString([]byte(tt.message)))
			for route, err := range map[string]error{"v1/sign/siwe": terr, "dev/sign-message": derr} {
				var refusal *api.Error
				switch {
				case tt.want == "" && err != nil:
					t.Errorf("%s: %v, want signed", route, err)
				case tt.want != "" && (!errors.As(err, &refusal) || refusal.Code != tt.want):
					t.Errorf("%s: %v, want a signed refusal %s", route, err, tt.want)
				}
			}
			if tt.want == "" && terr == nil && derr == nil && typed.Signature != dev.Signature {
				t.Errorf("the two routes sign the same message differently: %s, %s", typed.Signature, dev.Signature)
			}
		})
	}
	// Messages that are not SIWE still sign on the compatibility surface.
	if _, err := c.DevSignMessage(ctx(t), omniHex, "0x68656c6c6f"); err != nil {
		t.Fatalf("a plain message: %v", err)
	}
}

func itoa(n int) string { return string(rune('0' + n)) } // the chain ids above are one digit

// TestAuditRowSignaturesCannotBeMadeOnTheDevSurface: v1/sign/audit-row
// signs EIP-191 of keccak256(row), which dev/sign-message signs for any 32
// bytes, row or not, deterministic or not. A configuration that serves both
// is refused at start, with a configuration error naming them; either one
// alone starts, and the audit row it signs recovers to the wallet.
func TestAuditRowSignaturesCannotBeMadeOnTheDevSurface(t *testing.T) {
	t.Run("bad_dev_surface_with_audit_rows", func(t *testing.T) {
		dir := t.TempDir()
		if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
			t.Fatal(err)
		}
		editConfig(t, filepath.Join(dir, "pki", devpki.EnclaveJSON), func(cfg map[string]any) {
			roles := cfg["roles"].(map[string]any)
			roles["broker"] = []string{"v1/derive-address", "dev/sign-message"}
			roles["worker"] = []string{"v1/sign/audit-row"}
		})
		e := &env{t: t, dir: dir, sock: filepath.Join(dir, "enclave.sock")}
		os.MkdirAll(filepath.Join(dir, "nsm"), 0o700)
		p := start(t, filepath.Join(dir, "enclave.log"), "enclave", "--config", filepath.Join(dir, "pki", devpki.EnclaveJSON),
			"--listen", "unix://"+e.sock, "--state-dir", filepath.Join(dir, "nsm"))
		if served := waitServingOrExit(p, 20*time.Second); served {
			// Show what the configuration allows: a row v1/sign/audit-row
			// refuses (not deterministic CBOR), signed through the dev surface.
			e.enclave = p
			e.loadDevState()
			e.startParent("unix://" + e.sock)
			row := []byte{0xbf, 0x61, 0x61, 0x01, 0xff} // indefinite-length map
			hash := crypto.Keccak256(row)
			dev, err := e.client("broker").DevSignMessage(ctx(t), omniHex, "0x"+hex.EncodeToString(hash))
			if err != nil {
				t.Fatalf("the enclave started, and dev/sign-message: %v", err)
			}
			t.Fatalf("the enclave started with dev/sign-message and v1/sign/audit-row: dev/sign-message signed the "+
				"digest of a row audit-row refuses, %s by %s, recovering to the wallet: %v", dev.Signature, dev.Address,
				recovers(t, service.PersonalHash(hash), dev.Signature) == dev.Address)
		}
		logs := tail(p, 10)
		if !strings.Contains(logs, "dev/sign-message") || !strings.Contains(logs, "v1/sign/audit-row") {
			t.Fatalf("the enclave exited without naming the conflict:\n%s", logs)
		}
	})
	t.Run("audit_rows_without_the_dev_surface", func(t *testing.T) {
		e := newEnvWithConfig(t, func(cfg map[string]any) {
			cfg["dev_surface"] = false
			broker := cfg["roles"].(map[string]any)["broker"].([]any)
			cfg["roles"].(map[string]any)["broker"] = append(broker, "v1/sign/audit-row")
		})
		c := e.client("broker")
		wallet, err := c.DeriveAddress(ctx(t), omniHex, 1)
		if err != nil {
			t.Fatal(err)
		}
		em, _ := cbor.CoreDetEncOptions().EncMode()
		row, _ := em.Marshal(map[string]any{"actor": omniHex, "op": "fetch", "ts": 1764331200})
		ar, err := c.SignAuditRow(ctx(t), omniHex, row)
		if err != nil {
			t.Fatal(err)
		}
		if recovers(t, service.PersonalHash(unhex(t, ar.RowHash)), ar.Signature) != wallet.Address {
			t.Fatal("audit-row signature does not recover to the wallet")
		}
		var refusal *api.Error
		if _, err := c.DevSignMessage(ctx(t), omniHex, "0x"+hex.EncodeToString(unhex(t, ar.RowHash))); !errors.As(err, &refusal) ||
			refusal.Code != api.CodeUnknownMethod {
			t.Fatalf("dev/sign-message without the dev surface: %v, want %s", err, api.CodeUnknownMethod)
		}
	})
	t.Run("dev_surface_without_audit_rows", func(t *testing.T) {
		e := newEnvWithConfig(t, withoutMethod("v1/sign/audit-row"))
		if _, err := e.client("broker").DevSignMessage(ctx(t), omniHex, "0x"+strings.Repeat("ab", 32)); err != nil {
			t.Fatal(err)
		}
	})
}

// waitServingOrExit reports whether p logged that it serves before it
// exited.
func waitServingOrExit(p *proc, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		served := slices.ContainsFunc(p.lines, func(l string) bool { return strings.Contains(l, "enclave serving") })
		p.mu.Unlock()
		if served {
			return true
		}
		select {
		case <-p.done:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
)

func TestAttestVerify(t *testing.T) {
	dir := testvectors.Dir(t)
	doc := filepath.Join(dir, "attestation", "evervault-2023-01-18-nondebug-pcr8.cbor")
	debugDoc := filepath.Join(dir, "attestation", "evervault-2022-10-12-debug.cbor")
	b64Doc := filepath.Join(dir, "attestation", "evervault-2023-09-18-debug-nonce.b64")
	corrupt := filepath.Join(dir, "attestation", "nitro-validator-2026-01-03-corrupt-fixture.b64")
	raw, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	const pcr0 = "d265a83f"
	var meta struct {
		Payload struct {
			PCR0 string `json:"pcr0"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "attestation", "evervault-2023-01-18-nondebug-pcr8.json"), &meta); err != nil || !strings.HasPrefix(meta.Payload.PCR0, pcr0) {
		t.Fatalf("sidecar: %v", err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    []byte
		wantCode int
		wantOut  string // substring of stdout, or of stderr when the code is non-zero
	}{
		{"verifies_at_recorded_time", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--pcr", "0=" + meta.Payload.PCR0}, nil, 0, `"module_id": "i-0ec0e572c8263d8ff-enc0185c4fd382eeb25"`},
		{"stdin_raw", []string{"--doc", "-", "--at", "2023-01-18T13:07:19Z"}, raw, 0, `"digest": "SHA384"`},
		{"stdin_base64", []string{"--doc", "-", "--at", "2023-01-18T13:07:19Z"}, []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), 0, `"debug": false`},
		{"b64_file_debug_allowed", []string{"--doc", b64Doc, "--at", "2023-09-18T15:03:31Z", "--allow-debug"}, nil, 0, `"debug": true`},
		{"expired_now", []string{"--doc", doc}, nil, 1, "rule=certificate_expired"},
		{"debug_refused", []string{"--doc", debugDoc, "--at", "2022-10-12T13:50:07Z"}, nil, 1, "rule=debug"},
		{"wrong_pcr", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--pcr", "0=" + strings.Repeat("00", 48)}, nil, 1, "rule=pcr_mismatch"},
		{"wrong_nonce", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--nonce", "00"}, nil, 1, "rule=nonce_mismatch"},
		{"stale", []string{"--doc", doc, "--at", "2023-01-18T14:07:19Z", "--max-age", "5m"}, nil, 1, "rule=stale"},
		{"corrupt", []string{"--doc", corrupt, "--at", "2026-01-03T20:41:08Z"}, nil, 1, "rule=malformed"},
		{"bad_pcr_flag", []string{"--doc", doc, "--pcr", "zero=00"}, nil, 2, "PCR index"},
		{"missing_doc", []string{}, nil, 2, "--doc is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"attest", "verify"}, tt.args...), bytes.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			got := stdout.String()
			if code != 0 {
				got = stderr.String()
				if n := strings.Count(got, "\n"); tt.wantCode == 1 && n != 1 {
					t.Errorf("failure printed %d lines, want 1", n)
				}
			}
			if !strings.Contains(got, tt.wantOut) {
				t.Fatalf("output %q lacks %q", got, tt.wantOut)
			}
		})
	}
}

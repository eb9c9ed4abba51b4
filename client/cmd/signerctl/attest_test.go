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
			PCR0 string            `json:"pcr0"`
			PCRs map[string]string `json:"pcrs_nonzero"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "attestation", "evervault-2023-01-18-nondebug-pcr8.json"), &meta); err != nil || !strings.HasPrefix(meta.Payload.PCR0, pcr0) {
		t.Fatalf("sidecar: %v", err)
	}
	// releases.json files around the real document's measurements: its
	// own image, a signed-image release pinning only its PCR8, another
	// image, an expired release of its image, and PCR0 of its image with
	// PCR1 of another.
	p := meta.Payload.PCRs
	other := strings.Repeat("ab", 48)
	release := func(version, pcr0, pcr1, pcr8, extra string) string {
		r := `{"version":"` + version + `","pcr0":"` + pcr0 + `","pcr1":"` + pcr1 + `","pcr2":"` + p["2"] + `",`
		if pcr8 != "" {
			r += `"pcr8":"` + pcr8 + `",`
		}
		return r + `"eif_sha256":"` + strings.Repeat("e", 64) + `","not_before":"2023-01-01T00:00:00Z"` + extra + `}`
	}
	releases := func(name string, rs ...string) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(`{"releases":[`+strings.Join(rs, ",")+`]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	own := releases("own.json", release("other", other, other, "", ""), release("v-own", p["0"], p["1"], "", ""))
	signed := releases("signed.json", release("v-signed", other, other, p["8"], `,"match":["pcr8"]`))
	otherSigner := releases("other-signer.json", release("v-signed", p["0"], p["1"], other, `,"match":["pcr8"]`))
	expired := releases("expired.json", release("v-old", p["0"], p["1"], "", `,"not_after":"2023-01-10T00:00:00Z"`))
	mixed := releases("mixed.json", release("a", p["0"], other, "", ""), release("b", other, p["1"], "", ""))
	// A release whose PCR8 is zeros, as a hand-edited manifest could give
	// it: every unsigned image reports that PCR8, so a hostile parent
	// running any unsigned enclave of its own (here a real one, of
	// another project) would match it.
	unsignedDoc := filepath.Join(dir, "attestation", "op-enclave-2024-02-26-nondebug.cbor")
	zeroPCR8 := releases("zero-pcr8.json", release("v-any-unsigned", other, other, strings.Repeat("00", 48), `,"match":["pcr8"]`))
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
		{"releases_own_image", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--releases", own}, nil, 0, `"release": "v-own"`},
		{"releases_signing_certificate_only", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--releases", signed}, nil, 0, `"release": "v-signed"`},
		{"releases_other_signing_certificate", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--releases", otherSigner}, nil, 1, "rule=pcr_mismatch"},
		{"releases_expired", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--releases", expired}, nil, 1, "rule=release_expired"},
		{"releases_pcr8_of_zeros_is_refused_not_matched", []string{"--doc", unsignedDoc, "--at", "2024-02-26T07:02:01Z", "--releases", zeroPCR8}, nil, 1, "rule=input"},
		{"releases_pcr0_of_one_pcr1_of_another", []string{"--doc", doc, "--at", "2023-01-18T13:07:19Z", "--releases", mixed}, nil, 1, "rule=pcr_mismatch"},
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

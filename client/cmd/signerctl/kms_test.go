package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
)

const kmsRole = "arn:aws:iam::111122223333:role/signer-role"

func hex48(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 48) }

// writeReleases writes a releases.json of two releases, A and B.
func writeReleases(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "releases.json")
	body := fmt.Sprintf(`{"releases": [
 {"version": "A", "pcr0": "%s", "pcr1": "%s", "pcr2": "%s", "eif_sha256": "%s", "not_before": "2026-01-01T00:00:00Z"},
 {"version": "B", "pcr0": "%s", "pcr1": "%s", "pcr2": "%s", "eif_sha256": "%s", "not_before": "2026-02-01T00:00:00Z"}]}`,
		hex48(0xa0), hex48(0xa1), hex48(0xa2), strings.Repeat("e", 64), hex48(0xb0), hex48(0xb1), hex48(0xb2), strings.Repeat("e", 64))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCtl(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// kms policy prints what kmspolicy renders, and the local KMS takes it as
// its key policy.
func TestKMSPolicyPrintsTheRenderedPolicy(t *testing.T) {
	releases := writeReleases(t, t.TempDir())
	code, out, stderr := runCtl("", "kms", "policy", "--releases", releases, "--role", kmsRole, "--signer-id", "signer-a")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(releases)
	rs, err := attestation.ParseReleases(b)
	if err != nil {
		t.Fatal(err)
	}
	d, err := kmspolicy.Render(rs, kmspolicy.Options{Role: kmsRole, SignerID: "signer-a"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := d.Marshal()
	if out != string(want) {
		t.Fatalf("printed\n%s\nwant\n%s", out, want)
	}
	k, err := kmstest.Start(kmstest.Policy{KeyID: "arn:aws:kms:us-east-1:111122223333:key/k", Region: "us-east-1", KeyPolicy: []byte(out)})
	if err != nil {
		t.Fatalf("the local KMS refused the printed policy: %v", err)
	}
	k.Close()
	// --manifest is --releases.
	if code, again, _ := runCtl("", "kms", "policy", "--manifest", releases, "--role", kmsRole, "--signer-id", "signer-a"); code != 0 || again != out {
		t.Fatalf("--manifest: exit %d", code)
	}
}

func TestKMSCheck(t *testing.T) {
	dir := t.TempDir()
	releases := writeReleases(t, dir)
	_, policy, _ := runCtl("", "kms", "policy", "--releases", releases, "--role", kmsRole, "--signer-id", "signer-a")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	// As aws kms get-key-policy --output text prints it: compact, one
	// line, a newline after.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	live := compact.String() + "\n"
	drifted := strings.Replace(live, hex48(0xb1), hex48(0x99), 1)
	retired := strings.Replace(live, hex48(0xa0), hex48(0x10), 1)
	for _, tc := range []struct {
		name, policy, stdin string
		code                int
		stdout, stderr      string
	}{
		{name: "equivalent", policy: write("live.json", live), code: 0,
			stdout: "the key policy allows exactly the 2 releases of " + releases + "\n"},
		{name: "equivalent_from_stdin", policy: "-", stdin: live, code: 0,
			stdout: "the key policy allows exactly the 2 releases of " + releases + "\n"},
		{name: "bad_pcr1_drifted", policy: write("drifted.json", drifted), code: 1,
			stdout: `release "B": kms:RecipientAttestation:PCR1 is ` + hex48(0x99) + `, want ` + hex48(0xb1) + "\n",
			stderr: "kms check: the key policy differs from " + releases + ": 1 difference\n"},
		{name: "bad_pcr0_of_another_image", policy: write("retired.json", retired), code: 1,
			stdout: `release "A": kms:RecipientAttestation:PCR0 is ` + hex48(0x10) + `, want ` + hex48(0xa0) + "\n",
			stderr: "kms check: the key policy differs from " + releases + ": 1 difference\n"},
		{name: "bad_policy_not_json", policy: write("bad.json", "Version: 1"), code: 1},
		{name: "bad_policy_missing", policy: filepath.Join(dir, "absent.json"), code: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCtl(tc.stdin, "kms", "check", "--releases", releases, "--role", kmsRole, "--signer-id", "signer-a", "--policy", tc.policy)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			if tc.stdout != "" || tc.stderr != "" {
				if stdout != tc.stdout || stderr != tc.stderr {
					t.Fatalf("stdout %q\nstderr %q\nwant\nstdout %q\nstderr %q", stdout, stderr, tc.stdout, tc.stderr)
				}
				return
			}
			if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "kms check: ") {
				t.Fatalf("a failure is one line on stderr: stdout %q stderr %q", stdout, stderr)
			}
		})
	}
}

func TestKMSCommandLine(t *testing.T) {
	releases := writeReleases(t, t.TempDir())
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"bad_no_releases", []string{"kms", "policy", "--role", kmsRole, "--signer-id", "s"}, 2},
		{"bad_no_role", []string{"kms", "policy", "--releases", releases, "--signer-id", "s"}, 2},
		{"bad_no_signer_id", []string{"kms", "policy", "--releases", releases, "--role", kmsRole}, 2},
		{"bad_check_without_policy", []string{"kms", "check", "--releases", releases, "--role", kmsRole, "--signer-id", "s"}, 2},
		{"bad_policy_flag_on_policy", []string{"kms", "policy", "--releases", releases, "--role", kmsRole, "--signer-id", "s", "--policy", "x"}, 2},
		{"bad_kms_unknown", []string{"kms", "apply"}, 2},
		{"bad_role", []string{"kms", "policy", "--releases", releases, "--role", "signer-role", "--signer-id", "s"}, 1},
		{"bad_signer_id", []string{"kms", "policy", "--releases", releases, "--role", kmsRole, "--signer-id", "Signer A"}, 1},
		{"bad_releases_file", []string{"kms", "policy", "--releases", kmsRole, "--role", kmsRole, "--signer-id", "s"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCtl("", tc.args...)
			if code != tc.code || strings.Count(stderr, "\n") != 1 || (code == 1 && stdout != "") {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, stdout, stderr)
			}
		})
	}
}

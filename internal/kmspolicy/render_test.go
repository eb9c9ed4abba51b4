package kmspolicy_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	role     = "arn:aws:iam::111122223333:role/signer-role"
	signerID = "signer-a"
)

// pcr is 48 bytes of b, as hex.
func pcr(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 48) }

// releasesJSON is a manifest: v1 (PCR0..2, until 2026-07-01), v2 (PCR0..2
// and PCR3), v3 (a signed image, PCR8 only) and v4 (PCR0 and PCR8).
const releasesJSON = `{"releases": [
 {"version": "v1", "pcr0": "%[1]s", "pcr1": "%[2]s", "pcr2": "%[3]s", "eif_sha256": "%[9]s",
  "not_before": "2026-01-01T00:00:00Z", "not_after": "2026-07-01T00:00:00Z"},
 {"version": "v2", "pcr0": "%[4]s", "pcr1": "%[5]s", "pcr2": "%[6]s", "pcr3": "%[7]s", "eif_sha256": "%[9]s",
  "not_before": "2026-03-01T00:00:00Z"},
 {"version": "v3", "pcr0": "%[4]s", "pcr1": "%[5]s", "pcr2": "%[6]s", "pcr8": "%[8]s", "eif_sha256": "%[9]s",
  "not_before": "2026-03-01T00:00:00Z", "match": ["pcr8"]},
 {"version": "v4.0-rc.1", "pcr0": "%[4]s", "pcr1": "%[5]s", "pcr2": "%[6]s", "pcr8": "%[8]s", "eif_sha256": "%[9]s",
  "not_before": "2026-03-01T00:00:00Z", "match": ["pcr0", "pcr8"]}]}`

func releases(t testing.TB, versions ...string) *attestation.Releases {
	t.Helper()
	rs, err := attestation.ParseReleases([]byte(fmt.Sprintf(releasesJSON, pcr(0xa0), pcr(0xa1), pcr(0xa2),
		pcr(0xb0), pcr(0xb1), pcr(0xb2), pcr(0xb3), pcr(0xc8), strings.Repeat("e", 64))))
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) > 0 {
		var keep []attestation.Release
		for _, v := range versions {
			for _, r := range rs.Releases {
				if r.Version == v {
					keep = append(keep, r)
				}
			}
		}
		rs.Releases = keep
	}
	return rs
}

func render(t testing.TB, rs *attestation.Releases) *kmspolicy.Document {
	t.Helper()
	d, err := kmspolicy.Render(rs, kmspolicy.Options{Role: role, SignerID: signerID})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func marshal(t testing.TB, d *kmspolicy.Document) []byte {
	t.Helper()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The rendered policy is reviewed as a file: testdata/policy.golden.
func TestRenderGolden(t *testing.T) {
	got := marshal(t, render(t, releases(t)))
	path := filepath.Join("testdata", "policy.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("rendered policy differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// What the statements must say, checked on the structure rather than the
// text: one statement per release, each PCR condition one value, the
// release's match and nothing else, the window, the signer_id; the
// administrators' statement allows nothing that gives key material away.
func TestRenderStatements(t *testing.T) {
	d := render(t, releases(t))
	if d.Version != "2012-10-17" || len(d.Statements) != 5 {
		t.Fatalf("version %q, %d statements", d.Version, len(d.Statements))
	}
	admin := d.Statements[0]
	if admin.Sid != kmspolicy.AdminSid || admin.Principal.AWS[0] != "arn:aws:iam::111122223333:root" || len(admin.Conditions) != 0 {
		t.Fatalf("admin statement: %+v", admin)
	}
	for _, a := range admin.Action {
		for _, s := range kmspolicy.SensitiveActions {
			if kmspolicy.Glob(strings.ToLower(a), strings.ToLower(s)) {
				t.Errorf("the administrators may %s", s)
			}
		}
		if strings.ContainsAny(a, "*?") {
			t.Errorf("admin action %q is a wildcard", a)
		}
	}
	type pin struct{ op, key, value string }
	want := map[string][]pin{
		"Release v1": {{"DateGreaterThanEquals", "aws:CurrentTime", "2026-01-01T00:00:00Z"}, {"DateLessThan", "aws:CurrentTime", "2026-07-01T00:00:00Z"},
			{"StringEquals", "kms:EncryptionContext:nitro-signer:signer_id", signerID},
			{"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", pcr(0xa0)}, {"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR1", pcr(0xa1)},
			{"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR2", pcr(0xa2)}},
		"Release v2": {{"DateGreaterThanEquals", "aws:CurrentTime", "2026-03-01T00:00:00Z"},
			{"StringEquals", "kms:EncryptionContext:nitro-signer:signer_id", signerID},
			{"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", pcr(0xb0)}, {"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR1", pcr(0xb1)},
			{"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR2", pcr(0xb2)}, {"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR3", pcr(0xb3)}},
		"Release v3": {{"DateGreaterThanEquals", "aws:CurrentTime", "2026-03-01T00:00:00Z"},
			{"StringEquals", "kms:EncryptionContext:nitro-signer:signer_id", signerID},
			{"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR8", pcr(0xc8)}},
		"Release v4 0 rc 1": {{"DateGreaterThanEquals", "aws:CurrentTime", "2026-03-01T00:00:00Z"},
			{"StringEquals", "kms:EncryptionContext:nitro-signer:signer_id", signerID},
			{"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR0", pcr(0xb0)}, {"StringEqualsIgnoreCase", "kms:RecipientAttestation:PCR8", pcr(0xc8)}},
	}
	for _, s := range d.Statements[1:] {
		pins, ok := want[s.Sid]
		if !ok {
			t.Fatalf("statement %q", s.Sid)
		}
		if s.Effect != "Allow" || s.Principal.AWS[0] != role || strings.Join(s.Action, ",") != "kms:Decrypt,kms:GenerateDataKey" || s.Resource[0] != "*" {
			t.Errorf("%s: %+v", s.Sid, s)
		}
		var got []pin
		for _, c := range s.Conditions {
			if len(c.Values) != 1 {
				t.Errorf("%s: %s has %d values", s.Sid, c.Key, len(c.Values))
			}
			got = append(got, pin{c.Operator, c.Key, c.Values[0]})
		}
		if fmt.Sprint(got) != fmt.Sprint(pins) {
			t.Errorf("%s: conditions\n%v\nwant\n%v", s.Sid, got, pins)
		}
	}
	// The rendered policy is its own equal, and has no hazard.
	if diffs := kmspolicy.Compare(d, d); diffs != nil {
		t.Fatalf("a policy differs from itself: %v", diffs)
	}
}

func TestRenderAccountOverridesTheRolesAccount(t *testing.T) {
	d, err := kmspolicy.Render(releases(t, "v1"), kmspolicy.Options{Role: role, SignerID: signerID, Account: "999988887777"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Statements[0].Principal.AWS[0]; got != "arn:aws:iam::999988887777:root" {
		t.Fatalf("admin principal %s", got)
	}
	cn, err := kmspolicy.Render(releases(t, "v1"), kmspolicy.Options{Role: "arn:aws-cn:iam::111122223333:role/path/to/signer", SignerID: signerID})
	if err != nil {
		t.Fatal(err)
	}
	if got := cn.Statements[0].Principal.AWS[0]; got != "arn:aws-cn:iam::111122223333:root" {
		t.Fatalf("admin principal in aws-cn %s", got)
	}
}

func TestRenderRefuses(t *testing.T) {
	collide := releases(t, "v1", "v2")
	collide.Releases[1].Version = "v1."
	huge := &attestation.Releases{}
	for i := range 64 {
		r := releases(t, "v2").Releases[0]
		r.Version = fmt.Sprintf("v%d", i)
		huge.Releases = append(huge.Releases, r)
	}
	for _, tc := range []struct {
		name string
		rs   *attestation.Releases
		o    kmspolicy.Options
	}{
		{"bad_role_not_an_arn", releases(t), kmspolicy.Options{Role: "signer-role", SignerID: signerID}},
		{"bad_role_a_user", releases(t), kmspolicy.Options{Role: "arn:aws:iam::111122223333:user/alice", SignerID: signerID}},
		{"bad_role_a_wildcard", releases(t), kmspolicy.Options{Role: "arn:aws:iam::111122223333:role/*", SignerID: signerID}},
		{"bad_role_short_account", releases(t), kmspolicy.Options{Role: "arn:aws:iam::1111:role/signer", SignerID: signerID}},
		{"bad_role_assumed_role_session", releases(t), kmspolicy.Options{Role: "arn:aws:sts::111122223333:assumed-role/signer/i-0abc", SignerID: signerID}},
		{"bad_account", releases(t), kmspolicy.Options{Role: role, SignerID: signerID, Account: "12345"}},
		{"bad_signer_id_upper_case", releases(t), kmspolicy.Options{Role: role, SignerID: "Signer"}},
		{"bad_signer_id_policy_variable", releases(t), kmspolicy.Options{Role: role, SignerID: "${aws:username}"}},
		{"bad_signer_id_empty", releases(t), kmspolicy.Options{Role: role}},
		{"bad_no_release", &attestation.Releases{}, kmspolicy.Options{Role: role, SignerID: signerID}},
		{"bad_nil_releases", nil, kmspolicy.Options{Role: role, SignerID: signerID}},
		{"bad_two_releases_one_sid", collide, kmspolicy.Options{Role: role, SignerID: signerID}},
		{"bad_larger_than_kms_stores", huge, kmspolicy.Options{Role: role, SignerID: signerID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kmspolicy.Render(tc.rs, tc.o)
			if !errors.Is(err, kmspolicy.ErrOptions) {
				t.Fatalf("Render: %v, want ErrOptions", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
		})
	}
}

func TestSidOf(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3": "Release v1 2 3", "2026-01-05_build.7": "Release 2026 01 05 build 7", "..v1..": "Release v1", "é": "Release", "A b": "Release A b",
	} {
		if got := kmspolicy.SidOf(in); got != want {
			t.Errorf("SidOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "kms:decrypt", true}, {"kms:*", "kms:decrypt", true}, {"kms:de*", "kms:decrypt", true},
		{"kms:generatedatakey*", "kms:generatedatakey", true}, {"kms:re*", "kms:decrypt", false},
		{"kms:?ecrypt", "kms:decrypt", true}, {"kms:?ecrypt", "kms:encrypt", false}, {"kms:?ncrypt", "kms:encrypt", true}, {"kms:*crypt", "kms:reencryptfrom", false},
		{"kms:decrypt", "kms:decrypt", true}, {"kms:decrypt", "kms:decrypts", false}, {"*a*b*c*", "xaybzc", true}, {"*a*b*c*", "xaybz", false},
	} {
		if got := kmspolicy.Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

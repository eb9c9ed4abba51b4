package attestation_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
)

func pcrHex(c byte) string { return strings.Repeat(string("0123456789abcdef"[c%16]), 96) }

const releasesOK = `{"releases": [
  {"version": "v1", "pcr0": "` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + `",
   "pcr1": "PCR1", "pcr2": "PCR2", "eif_sha256": "EIF", "not_before": "2026-11-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"},
  {"version": "v2", "pcr0": "PCR0B", "pcr1": "PCR1", "pcr2": "PCR2", "pcr8": "PCR8", "eif_sha256": "EIF",
   "not_before": "2026-12-01T00:00:00Z", "match": ["pcr8", "pcr0"]}
]}`

func releasesDoc(edit func(string) string) []byte {
	s := strings.NewReplacer("PCR0B", pcrHex(0xb), "PCR1", pcrHex(1), "PCR2", pcrHex(2), "PCR8", pcrHex(8), "EIF", strings.Repeat("e", 64)).Replace(releasesOK)
	if edit != nil {
		s = edit(s)
	}
	return []byte(s)
}

func TestParseReleases(t *testing.T) {
	rs, err := attestation.ParseReleases(releasesDoc(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Releases) != 2 {
		t.Fatalf("%d releases", len(rs.Releases))
	}
	a, b := rs.Releases[0], rs.Releases[1]
	if a.Version != "v1" || !a.NotAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || len(a.Match) != 3 {
		t.Fatalf("v1: %+v", a)
	}
	if b.Version != "v2" || !b.NotAfter.IsZero() || len(b.Match) != 2 || b.Match[0] != 0 || b.Match[1] != 8 {
		t.Fatalf("v2: %+v", b)
	}
	ms := rs.Measurements()
	if len(ms[0].PCRs) != 3 || len(ms[1].PCRs) != 2 || ms[1].PCRs[1] != nil {
		t.Fatalf("measurements %+v", ms)
	}
	out, err := rs.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := attestation.ParseReleases(out)
	if err != nil {
		t.Fatalf("Marshal wrote what ParseReleases refuses: %v\n%s", err, out)
	}
	out2, _ := again.Marshal()
	if !bytes.Equal(out, out2) {
		t.Fatal("Marshal is not stable across a round trip")
	}
}

func TestParseReleasesRefuses(t *testing.T) {
	repl := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
	}{
		{"bad_unknown_top_key", repl(`{"releases"`, `{"release"`)},
		{"bad_second_top_key", repl("\n]}", "\n], \"x\": 1}")},
		{"bad_release_key_in_other_case", repl(`"version": "v1"`, `"Version": "v1"`)},
		{"bad_unknown_release_key", repl(`"version": "v1"`, `"version": "v1", "pcr9": "`+pcrHex(9)+`"`)},
		{"bad_duplicate_key", repl(`"version": "v1"`, `"version": "v1", "version": "v3"`)},
		{"bad_duplicate_version", repl(`"version": "v2"`, `"version": "v1"`)},
		{"bad_missing_pcr1", repl(`"pcr1": "`+pcrHex(1)+`", "pcr2"`, `"pcr2"`)},
		{"bad_missing_not_before", repl(`"not_before": "2026-11-01T00:00:00Z", `, ``)},
		{"bad_missing_eif", repl(`"eif_sha256": "`+strings.Repeat("e", 64)+`", "not_before": "2026-11-01`, `"not_before": "2026-11-01`)},
		{"bad_pcr_uppercase", repl(pcrHex(1), strings.ToUpper(pcrHex(0xa)))},
		{"bad_pcr_95_characters", repl(pcrHex(1), pcrHex(1)[:95])},
		{"bad_time_not_rfc3339", repl("2026-11-01T00:00:00Z", "2026-11-01")},
		{"bad_window_inverted", repl("2027-01-01T00:00:00Z", "2026-10-01T00:00:00Z")},
		{"bad_match_names_absent_pcr", repl(`["pcr8", "pcr0"]`, `["pcr8", "pcr3"]`)},
		{"bad_match_pins_only_pcr0", repl(`["pcr8", "pcr0"]`, `["pcr0"]`)},
		{"bad_match_twice", repl(`["pcr8", "pcr0"]`, `["pcr8", "pcr8"]`)},
		{"bad_match_unknown", repl(`["pcr8", "pcr0"]`, `["PCR8"]`)},
		{"bad_trailing_data", func(s string) string { return s + " {}" }},
		{"bad_pcr8_zeros_every_unsigned_image", repl(pcrHex(8), strings.Repeat("0", 96))},
		{"bad_pcr1_zeros_every_debug_enclave", repl(pcrHex(1), strings.Repeat("0", 96))},
		{"bad_not_after_zero_time_reads_as_absent", repl("2027-01-01T00:00:00Z", "0001-01-01T00:00:00Z")},
		{"bad_not_before_year_zero", repl("2026-11-01T00:00:00Z", "0000-01-01T00:00:00Z")},
		{"bad_version_control_character", repl(`"version": "v1"`, `"version": "v1\u0000"`)},
		{"bad_version_lone_surrogate", repl(`"version": "v1"`, `"version": "v\ud800"`)},
		{"bad_not_object", func(string) string { return `[]` }},
		{"bad_not_utf8", func(s string) string { return strings.Replace(s, "v1", "v\xff", 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := attestation.ParseReleases(releasesDoc(tc.edit)); !errors.Is(err, attestation.ErrManifest) {
				t.Fatalf("%v, want ErrManifest", err)
			}
		})
	}
	if _, err := attestation.ParseReleases(make([]byte, attestation.MaxReleasesSize+1)); !errors.Is(err, attestation.ErrManifest) {
		t.Fatal("oversized releases accepted")
	}
}

// FuzzParseReleases: ParseReleases never panics, refuses only with
// ErrManifest, and what it accepts Marshals to something it accepts again,
// holding the same releases.
func FuzzParseReleases(f *testing.F) {
	f.Add(releasesDoc(nil))
	f.Add([]byte(`{"releases":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := attestation.ParseReleases(b)
		if err != nil {
			if !errors.Is(err, attestation.ErrManifest) {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		out, err := rs.Marshal()
		if err != nil {
			t.Fatalf("accepted releases do not marshal: %v", err)
		}
		again, err := attestation.ParseReleases(out)
		if err != nil || len(again.Releases) != len(rs.Releases) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range rs.Releases {
			if rs.Releases[i].Version != again.Releases[i].Version || len(rs.Releases[i].Match) != len(again.Releases[i].Match) {
				t.Fatalf("release %d changed in a round trip", i)
			}
		}
	})
}

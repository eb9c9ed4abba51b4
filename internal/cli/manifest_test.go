package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/attestation"
)

// TestPCRManifestIsReadStrictly is issue 13's "pcrs.json is read loosely":
// any key that scanned as pcr%d counted, so pcr1_previous pinned PCR1, and
// which of two such keys won depended on map order. The manifest is now
// parsed by attestation.ParseManifest: exact keys, 96 lowercase hex
// characters per PCR, each key once.
func TestPCRManifestIsReadStrictly(t *testing.T) {
	pcr := func(c string) string { return strings.Repeat(c, 96) }
	base := `"pcr0":"` + pcr("0") + `","pcr1":"` + pcr("1") + `","pcr2":"` + pcr("2") + `"`
	dir := t.TempDir()
	for _, tc := range []struct{ name, in string }{
		{"bad_unknown_key_pcr1_previous", `{` + base + `,"pcr1_previous":"` + pcr("9") + `"}`},
		{"bad_duplicate_key", `{` + base + `,"pcr1":"` + pcr("9") + `"}`},
		{"bad_key_in_other_case", `{` + base + `,"PCR1":"` + pcr("9") + `"}`},
		{"bad_short_hex", `{"pcr0":"` + pcr("0") + `","pcr1":"abcd","pcr2":"` + pcr("2") + `"}`},
		{"bad_uppercase", `{"pcr0":"` + pcr("A") + `","pcr1":"` + pcr("1") + `","pcr2":"` + pcr("2") + `"}`},
		{"bad_missing_pcr2", `{"pcr0":"` + pcr("0") + `","pcr1":"` + pcr("1") + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			if err := os.WriteFile(path, []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			pins := map[int][]byte{}
			err := ReadPCRManifest(path, pins)
			if !errors.Is(err, attestation.ErrManifest) {
				t.Fatalf("ReadPCRManifest: %v, pins %x; want ErrManifest", err, pins)
			}
		})
	}
}

package attestation_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/attestation"
)

func hex96(c string) string { return strings.Repeat(c, 96) }

func manifestPCRs() map[int][]byte {
	return map[int][]byte{0: bytes.Repeat([]byte{0x00}, 48), 1: bytes.Repeat([]byte{0x11}, 48), 2: bytes.Repeat([]byte{0x22}, 48)}
}

const simManifest = `{"pcr0":"` + "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
	`","pcr1":"` + "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111" +
	`","pcr2":"` + "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222" + `"`

func TestParseManifest(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	full := attestation.Manifest{Version: "v1.2.3", PCRs: manifestPCRs(), EIFSHA256: bytes.Repeat([]byte{0xab}, 32),
		Inputs: map[string][]byte{"config": bytes.Repeat([]byte{0xab}, 32)}}
	full.PCRs[8] = bytes.Repeat([]byte{0x88}, 48)
	for _, tc := range []struct {
		name string
		in   string
		want *attestation.Manifest // nil: refused
	}{
		{"simulator", simManifest + `}`, &attestation.Manifest{PCRs: manifestPCRs()}},
		{"signerctl", `{"version":"v1.2.3",` + simManifest[1:] + `,"pcr8":"` + hex96("8") + `","eif_sha256":"` + sha + `","inputs":{"config":"` + sha + `"}}`, &full},
		{"empty_version", `{"version":"",` + simManifest[1:] + `}`, &attestation.Manifest{PCRs: manifestPCRs()}},
		{"empty_inputs", simManifest + `,"inputs":{}}`, &attestation.Manifest{PCRs: manifestPCRs()}},
		{"whitespace", "\n{\n  " + simManifest[1:] + "\n}\n", &attestation.Manifest{PCRs: manifestPCRs()}},
		{"bad_unknown_key_pcr1_previous", simManifest + `,"pcr1_previous":"` + hex96("9") + `"}`, nil},
		{"bad_unknown_key_pcr3", simManifest + `,"pcr3":"` + hex96("3") + `"}`, nil},
		{"bad_unknown_key_pcr01", simManifest + `,"pcr01":"` + hex96("1") + `"}`, nil},
		{"bad_unknown_key", simManifest + `,"note":"x"}`, nil},
		{"bad_key_in_other_case", simManifest + `,"PCR8":"` + hex96("8") + `"}`, nil},
		{"bad_duplicate_key", simManifest + `,"pcr1":"` + hex96("9") + `"}`, nil},
		{"bad_duplicate_key_escaped", simManifest + `,"pcr\u0031":"` + hex96("9") + `"}`, nil},
		{"bad_duplicate_input", `{` + simManifest[1:] + `,"inputs":{"a":"` + sha + `","a":"` + sha + `"}}`, nil},
		{"bad_short_hex", `{"pcr0":"abcd","pcr1":"` + hex96("1") + `","pcr2":"` + hex96("2") + `"}`, nil},
		{"bad_long_hex", `{"pcr0":"` + hex96("0") + `00","pcr1":"` + hex96("1") + `","pcr2":"` + hex96("2") + `"}`, nil},
		{"bad_uppercase", `{"pcr0":"` + hex96("A") + `","pcr1":"` + hex96("1") + `","pcr2":"` + hex96("2") + `"}`, nil},
		{"bad_0x_prefix", `{"pcr0":"0x` + hex96("0")[2:] + `","pcr1":"` + hex96("1") + `","pcr2":"` + hex96("2") + `"}`, nil},
		{"bad_not_hex", `{"pcr0":"` + hex96("g") + `","pcr1":"` + hex96("1") + `","pcr2":"` + hex96("2") + `"}`, nil},
		{"bad_short_eif_sha256", simManifest + `,"eif_sha256":"abcd"}`, nil},
		{"bad_missing_pcr2", `{"pcr0":"` + hex96("0") + `","pcr1":"` + hex96("1") + `"}`, nil},
		{"bad_pcr_not_string", `{"pcr0":1,"pcr1":"` + hex96("1") + `","pcr2":"` + hex96("2") + `"}`, nil},
		{"bad_null_pcr", `{"pcr0":null,"pcr1":"` + hex96("1") + `","pcr2":"` + hex96("2") + `"}`, nil},
		{"bad_inputs_not_object", simManifest + `,"inputs":[]}`, nil},
		{"bad_empty_input_name", simManifest + `,"inputs":{"":"` + sha + `"}}`, nil},
		{"bad_trailing", simManifest + `} {}`, nil},
		{"bad_truncated", simManifest, nil},
		{"bad_not_object", `["pcr0"]`, nil},
		{"bad_not_utf8", "{\"pcr0\xff\":\"x\"}", nil},
		{"bad_empty", ``, nil},
		{"bad_too_large", simManifest + `,"version":"` + strings.Repeat("v", attestation.MaxManifestSize) + `"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := attestation.ParseManifest([]byte(tc.in))
			if tc.want == nil {
				if !errors.Is(err, attestation.ErrManifest) {
					t.Fatalf("ParseManifest: %+v, %v; want ErrManifest", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseManifest: %+v, want %+v", got, tc.want)
			}
			again, err := got.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if back, err := attestation.ParseManifest(again); err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("Marshal does not round-trip: %s, %v", again, err)
			}
		})
	}
}

func TestManifestMarshalRefusesWhatParseRefuses(t *testing.T) {
	for name, m := range map[string]attestation.Manifest{
		"bad_missing_pcr2": {PCRs: map[int][]byte{0: make([]byte, 48), 1: make([]byte, 48)}},
		"bad_pcr3":         {PCRs: map[int][]byte{0: make([]byte, 48), 1: make([]byte, 48), 2: make([]byte, 48), 3: make([]byte, 48)}},
		"bad_short_pcr":    {PCRs: map[int][]byte{0: make([]byte, 32), 1: make([]byte, 48), 2: make([]byte, 48)}},
		"bad_eif_sha256":   {PCRs: manifestPCRs(), EIFSHA256: make([]byte, 31)},
		"bad_input_name":   {PCRs: manifestPCRs(), Inputs: map[string][]byte{"": make([]byte, 32)}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := m.Marshal(); !errors.Is(err, attestation.ErrManifest) {
				t.Fatalf("Marshal: %v, want ErrManifest", err)
			}
		})
	}
}

// FuzzParseManifest: no input panics the parser; a refusal is ErrManifest;
// an accepted manifest has PCR0..2 (and only 0, 1, 2, 8) of 48 bytes and
// survives Marshal and ParseManifest unchanged.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(simManifest + `}`))
	f.Add([]byte(simManifest + `,"pcr1_previous":"` + hex96("9") + `"}`))
	f.Add([]byte(simManifest + `,"pcr1":"` + hex96("9") + `"}`))
	f.Add([]byte(simManifest + `,"PCR1":"` + hex96("9") + `"}`))
	f.Add([]byte(`{"version":"v",` + simManifest[1:] + `,"pcr8":"` + hex96("8") + `","eif_sha256":"` + strings.Repeat("0", 64) + `","inputs":{"c":"` + strings.Repeat("1", 64) + `"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := attestation.ParseManifest(b)
		if err != nil {
			if !errors.Is(err, attestation.ErrManifest) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		for i, v := range m.PCRs {
			if i != 0 && i != 1 && i != 2 && i != 8 || len(v) != 48 {
				t.Fatalf("accepted PCR%d of %d bytes", i, len(v))
			}
		}
		if len(m.PCRs[0]) == 0 || len(m.PCRs[1]) == 0 || len(m.PCRs[2]) == 0 {
			t.Fatal("accepted a manifest without PCR0..2")
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("accepted manifest does not marshal: %v", err)
		}
		back, err := attestation.ParseManifest(again)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip: %v, %+v, want %+v", err, back, m)
		}
	})
}

package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

type foldInner struct {
	Key string `json:"key"`
}

type foldEmbedded struct {
	Promoted string `json:"promoted"`
	Untagged string
}

type foldTarget struct {
	foldEmbedded
	OmniAccount string            `json:"omni_account"`
	Kind        string            `json:"kind"`
	Sub         foldInner         `json:"sub"`
	Ptr         *foldInner        `json:"ptr"`
	List        []foldInner       `json:"list"`
	Fixed       [2]foldInner      `json:"fixed"`
	Map         map[string]string `json:"map"`
	MapOfStruct map[string]foldInner
	Raw         json.RawMessage `json:"raw"`
	Any         any             `json:"any"`
	Skipped     string          `json:"-"`
	Omit        string          `json:"omit,omitempty"`
}

// TestDecodeJSONFieldsMatchExactlyAndKeysNeverFold is issue 13 finding 7:
// encoding/json matches field names without regard to case and lets the
// last of two such keys win, so {"omni_account":A,"OMNI_ACCOUNT":B} decoded
// as B. Decode refuses any object with two keys equal under Unicode
// case folding (as encoding/json folds, Kelvin sign and long s included),
// and any key that names a field in another case.
func TestDecodeJSONFieldsMatchExactlyAndKeysNeverFold(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"bad_keys_equal_under_case_folding", `{"omni_account":"a","OMNI_ACCOUNT":"b"}`, false},
		{"bad_keys_equal_under_case_folding_mixed", `{"omni_account":"a","Omni_Account":"b"}`, false},
		{"bad_keys_equal_under_case_folding_in_map", `{"map":{"a":"1","A":"2"}}`, false},
		{"bad_keys_equal_under_case_folding_in_raw", `{"raw":{"x":1,"X":2}}`, false},
		{"bad_keys_equal_under_case_folding_in_any", `{"any":[{"chainId":1,"chainID":2}]}`, false},
		{"bad_keys_equal_under_case_folding_escaped", `{"omni_account":"a","\u004fMNI_ACCOUNT":"b"}`, false},
		{"bad_keys_equal_under_case_folding_kelvin", `{"kind":"a","\u212aind":"b"}`, false},
		{"bad_keys_equal_under_case_folding_kelvin_raw_utf8", "{\"map\":{\"k\":\"1\",\"\u212a\":\"2\"}}", false},
		{"bad_keys_equal_under_case_folding_long_s", "{\"map\":{\"s\":\"1\",\"\u017f\":\"2\"}}", false},
		{"bad_keys_equal_under_case_folding_long_s_upper", "{\"map\":{\"S\":\"1\",\"\u017f\":\"2\"}}", false},
		{"bad_keys_equal_under_case_folding_greek_sigma", "{\"map\":{\"\u03a3\":\"1\",\"\u03c2\":\"2\"}}", false},
		{"bad_field_in_other_case", `{"OMNI_ACCOUNT":"b"}`, false},
		{"bad_field_in_other_case_title", `{"Omni_Account":"b"}`, false},
		{"bad_field_in_other_case_escaped", `{"\u004fmni_account":"b"}`, false},
		{"bad_field_in_other_case_nested", `{"sub":{"KEY":"x"}}`, false},
		{"bad_field_in_other_case_pointer", `{"ptr":{"Key":"x"}}`, false},
		{"bad_field_in_other_case_in_slice", `{"list":[{"key":"1"},{"KEY":"2"}]}`, false},
		{"bad_field_in_other_case_in_array", `{"fixed":[{"key":"1"},{"kEy":"2"}]}`, false},
		{"bad_field_in_other_case_map_value", `{"MapOfStruct":{"x":{"Key":"1"}}}`, false},
		{"bad_field_in_other_case_map_name", `{"mapofstruct":{}}`, false},
		{"bad_field_in_other_case_embedded", `{"PROMOTED":"x"}`, false},
		{"bad_field_in_other_case_untagged", `{"untagged":"x"}`, false},
		{"bad_field_in_other_case_kelvin", `{"\u212aind":"x"}`, false},
		{"bad_field_in_other_case_kelvin_raw_utf8", "{\"\u212aind\":\"x\"}", false},
		{"bad_field_in_other_case_long_s", "{\"list\":[{\"key\":\"1\"}],\"omit\":\"\",\"map\":{},\"any\":null,\"\u017fub\":{}}", false},
		{"bad_skipped_field", `{"Skipped":"x"}`, false},
		{"bad_unknown_field", `{"omni":"x"}`, false},

		{"exact_fields", `{"omni_account":"a","kind":"k","sub":{"key":"x"},"ptr":{"key":"y"},"list":[{"key":"1"}],"fixed":[{"key":"1"},{"key":"2"}],"omit":"o"}`, true},
		{"exact_promoted_and_untagged", `{"promoted":"p","Untagged":"u"}`, true},
		{"exact_escaped_key", `{"\u006fmni_account":"a"}`, true},
		{"map_keys_are_free", `{"map":{"A":"1","b":"2","OMNI_ACCOUNT":"3"},"MapOfStruct":{"K":{"key":"v"}}}`, true},
		{"raw_and_any_keys_are_free", `{"raw":{"OMNI_ACCOUNT":1},"any":{"Kind":{"X":1}}}`, true},
		{"distinct_unicode_keys", "{\"map\":{\"\u00e9\":\"1\",\"e\":\"2\",\"\u00c9t\u00e9\":\"3\",\"ss\":\"4\",\"\u00df\":\"5\"}}", true},
		{"same_key_in_sibling_objects", `{"list":[{"key":"1"},{"key":"2"}],"sub":{"key":"3"}}`, true},
		{"null_values", `{"sub":null,"ptr":null,"list":null,"map":null,"raw":null}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v foldTarget
			err := strictjson.Decode([]byte(tc.in), &v, 1<<16)
			if tc.ok && err != nil {
				t.Fatalf("Decode(%s): %v", tc.in, err)
			}
			if !tc.ok && !errors.Is(err, strictjson.ErrJSON) {
				t.Fatalf("Decode(%s): %v (decoded %+v), want ErrJSON", tc.in, err, v)
			}
		})
	}
}

// TestDecodeJSONKeysAtEveryScale: the fold check holds past the point where
// the scanner switches from a list of keys to a set.
func TestDecodeJSONKeysAtEveryScale(t *testing.T) {
	for _, n := range []int{1, 2, 15, 16, 17, 100, 2000} {
		var b strings.Builder
		b.WriteString(`{"map":{`)
		for i := range n {
			b.WriteString(`"k` + strconv.Itoa(i) + `":"v",`)
		}
		base := b.String()
		var v foldTarget
		if err := strictjson.Decode([]byte(base+`"end":"x"}}`), &v, 1<<20); err != nil {
			t.Fatalf("%d distinct keys: %v", n, err)
		}
		for name, last := range map[string]string{"upper": `"K0"`, "kelvin": `"\u212a0"`, "kelvin_raw_utf8": "\"\u212a0\""} {
			if err := strictjson.Decode([]byte(base+last+`:"x"}}`), &v, 1<<20); !errors.Is(err, strictjson.ErrJSON) {
				t.Fatalf("%d keys then %s: %v, want ErrJSON", n, name, err)
			}
		}
	}
}

// TestDecodeOpenIgnoresOnlyUnknownKeys: an extensible format may carry
// members no field names, but not a field in another case, nor keys equal
// under case folding.
func TestDecodeOpenIgnoresOnlyUnknownKeys(t *testing.T) {
	type clientData struct {
		Type   string `json:"type"`
		Origin string `json:"origin"`
	}
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"unknown_member_ignored", `{"type":"webauthn.get","origin":"https://a","other_keys_can_be_added_here":"x"}`, true},
		{"bad_field_in_other_case", `{"type":"webauthn.get","Origin":"https://evil"}`, false},
		{"bad_keys_equal_under_case_folding", `{"origin":"https://a","ORIGIN":"https://evil"}`, false},
		{"bad_keys_equal_under_case_folding_unknown", `{"x":1,"X":2}`, false},
		{"bad_duplicate", `{"origin":"https://a","origin":"https://evil"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v clientData
			err := strictjson.DecodeOpen([]byte(tc.in), &v, 1<<10)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, strictjson.ErrJSON)) {
				t.Fatalf("DecodeOpen(%s): %v, want ok %v", tc.in, err, tc.ok)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	type T struct {
		A int            `json:"a"`
		B map[string]any `json:"b"`
	}
	deep := strings.Repeat(`{"x":`, strictjson.MaxDepth) + "1" + strings.Repeat("}", strictjson.MaxDepth)
	for name, in := range map[string]string{
		"bad_duplicate_top":    `{"a":1,"a":2}`,
		"bad_duplicate_nested": `{"b":{"x":1,"x":2}}`,
		"bad_unknown_field":    `{"c":1}`,
		"bad_trailing":         `{"a":1} x`,
		"bad_deep":             `{"b":` + deep + `}`,
		"bad_truncated":        `{"a":1`,
		"bad_not_json":         `a=1`,
	} {
		t.Run(name, func(t *testing.T) {
			var v T
			if err := strictjson.Decode([]byte(in), &v, 1<<20); !errors.Is(err, strictjson.ErrJSON) {
				t.Fatalf("Decode(%s): %v, want ErrJSON", in, err)
			}
		})
	}
	var v T
	if err := strictjson.Decode([]byte(`{"a":1,"b":{"x":[{"y":1},{"y":2}],"z":{"y":3}}}`), &v, 1<<20); err != nil {
		t.Fatalf("valid JSON (same key in sibling objects): %v", err)
	}
	if err := strictjson.Decode([]byte(`{"a":1}`), &v, 3); !errors.Is(err, strictjson.ErrJSON) {
		t.Fatal("size limit not enforced")
	}
}

// FuzzDecodeJSON: Decode never panics, refuses only with ErrJSON, and
// what it accepts has its fields in exactly their case and no object with
// two keys equal under case folding (issue 13 finding 7) — checked against
// strings.EqualFold, the folding encoding/json matches names with.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"x":[1,2,{"y":null}]}}`,
		`{"a":1,"a":2}`,
		`{"a":1,"A":2}`,
		`{"A":1}`,
		`{"\u0041":1}`,
		`{"b":{"k":1,"\u212a":2}}`,
		"{\"b\":{\"k\":1,\"\u212a\":2}}",
		"{\"b\":{\"s\":1,\"\u017f\":2}}",
		"{\"b\":{\"\u03a3\":1,\"\u03c2\":2}}",
		`{"b":{"x":{"chainId":1,"chainID":2}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v struct {
			A any            `json:"a"`
			B map[string]any `json:"b"`
		}
		err := strictjson.Decode(b, &v, 1<<16)
		if err != nil {
			if !errors.Is(err, strictjson.ErrJSON) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(b, &top) == nil {
			for k := range top {
				if k != "a" && k != "b" {
					t.Fatalf("accepted key %q, which is no field's exact name", k)
				}
			}
		}
		if k1, k2, found := keysEqualUnderFolding(b); found {
			t.Fatalf("accepted an object with keys %q and %q", k1, k2)
		}
	})
}

// keysEqualUnderFolding finds two keys of one object that strings.EqualFold
// takes for one.
func keysEqualUnderFolding(b []byte) (string, string, bool) {
	type level struct {
		object bool
		keys   []string
		key    bool
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := stack[n-1]
			if top.key {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:n-1]
					continue
				}
				k, _ := tok.(string)
				for _, other := range top.keys {
					if strings.EqualFold(k, other) {
						return other, k, true
					}
				}
				top.keys = append(top.keys, k)
				top.key = false
				continue
			}
			top.key = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, key: true})
		case json.Delim('['):
			stack = append(stack, &level{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// TestTypeErrorsNameTheFieldNotTheGoType: a value of the wrong kind is
// described in the wire's terms; the Go type's name is the implementation's
// and stays out of refusals the enclave signs.
func TestTypeErrorsNameTheFieldNotTheGoType(t *testing.T) {
	type innerParams struct {
		N uint32 `json:"n"`
	}
	type secretlyNamedParams struct {
		Sig   string      `json:"sig"`
		Inner innerParams `json:"inner"`
		Blob  []byte      `json:"blob"`
	}
	for _, tc := range []struct{ in, want string }{
		{`{"sig":1}`, `"sig": want string, got number`},
		{`{"inner":{"n":-1}}`, `"inner.n": want a non-negative integer in 32-bit range, got number -1`},
		{`{"inner":{"n":"1"}}`, `"inner.n": want a non-negative integer in 32-bit range, got string`},
		{`{"blob":{}}`, `"blob": want base64 string, got object`},
		{`[]`, `want object, got array`},
	} {
		var v secretlyNamedParams
		err := strictjson.Decode([]byte(tc.in), &v, 1<<10)
		if !errors.Is(err, strictjson.ErrJSON) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secretlyNamed") || strings.Contains(err.Error(), "innerParams") {
			t.Errorf("%s: %v, want …%s… without the Go type", tc.in, err, tc.want)
		}
	}
}

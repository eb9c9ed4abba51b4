package strictjson

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckJSONEscapedAndManyKeys(t *testing.T) {
	var many strings.Builder
	many.WriteString("{")
	for i := range 5000 {
		fmt.Fprintf(&many, `"k%d":%d,`, i, i)
	}
	for name, tc := range map[string]struct {
		in   string
		fail bool
	}{
		"escaped_duplicate":      {`{"a":1,"\u0061":2}`, true},
		"escaped_distinct":       {`{"a":1,"\u0062":2}`, false},
		"many_keys":              {many.String() + `"end":0}`, false},
		"many_keys_duplicate":    {many.String() + `"k4999":0}`, true},
		"string_value_looks_key": {`{"a":"b","c":["a","a"]}`, false},
		"colon_inside_string":    {`{"a":"x\":","a\"":1}`, false},
		"nested_same_keys":       {`{"a":{"a":{"a":1}},"b":{"a":2}}`, false},
		"nested_duplicate":       {`{"a":{"x":1,"x":2}}`, true},
		// encoding/json reads both keys as U+FFFD: one key, twice.
		"invalid_utf8_keys_collapse": {"{\"\xac\":1,\"\xe1\":2}", true},
		"invalid_utf8_value":         {"{\"a\":\"\xff\"}", true},
		"valid_utf8":                 {`{"é":"ü","e":"u"}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkJSON([]byte(tc.in), anyShape, false)
			if (err != nil) != tc.fail {
				t.Fatalf("checkJSON: %v, want failure %v", err, tc.fail)
			}
			if err != nil && !errors.Is(err, ErrJSON) {
				t.Fatalf("untyped: %v", err)
			}
		})
	}
}

// FuzzCheckJSONAgrees: the one-pass scan and the token walk agree on every
// input about whether it is acceptable.
func FuzzCheckJSONAgrees(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":2}]}}`, `{"\u0061":1,"a":2}`, `[1,2]`, `{"a":"\"","b":1}`,
		`{"a":1,"A":2}`, `{"k":1,"\u212a":2}`, "{\"k\":1,\"\u212a\":2}", "{\"s\":1,\"\u017f\":2}", "{\"\u03a3\":1,\"\u03c2\":2}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, slow := checkJSON(b, anyShape, false), checkJSONTokens(b)
		if (fast == nil) != (slow == nil) {
			t.Fatalf("scan says %v, token walk says %v", fast, slow)
		}
	})
}

package service_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// typed builds v4 typed data with a domain {name: "x"}, the given struct
// types (JSON object members) and message.
func typed(types, primary, message string) []byte {
	return []byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}]` + types + `},"primaryType":"` + primary +
		`","domain":{"name":"x"},"message":` + message + `}`)
}

func one(typ string) string { return `,"M":[{"name":"v","type":"` + typ + `"}]` }

// TestTypedDataGoEthereumCannotEncodeIsRefused holds HashTypedData to the
// rule that go-ethereum only ever sees values of the shape their type
// declares: each case is refused with invalid_typed_data (none panics), and
// its control with the shape fixed is hashed.
func TestTypedDataGoEthereumCannotEncodeIsRefused(t *testing.T) {
	item := `,"Item":[{"name":"a","type":"uint8"}]`
	tests := []struct {
		name      string
		raw, good []byte
	}{
		{"bad_null_in_array", typed(one("uint256[]"), "M", `{"v":[null]}`), typed(one("uint256[]"), "M", `{"v":[1]}`)},
		{"bad_null_struct_in_array", typed(one("Item[]")+item, "M", `{"v":[{"a":1},null]}`), typed(one("Item[]")+item, "M", `{"v":[{"a":1}]}`)},
		{"bad_null_atom", typed(one("string"), "M", `{"v":null}`), typed(one("string"), "M", `{"v":"s"}`)},
		{"bad_null_array", typed(one("bool[]"), "M", `{"v":null}`), typed(one("bool[]"), "M", `{"v":[]}`)},
		{"bad_null_struct", typed(one("Item")+item, "M", `{"v":null}`), typed(one("Item")+item, "M", `{"v":{"a":0}}`)},
		{"bad_null_in_nested_array", typed(one("uint8[][]"), "M", `{"v":[[1],null]}`), typed(one("uint8[][]"), "M", `{"v":[[1],[]]}`)},
		{"bad_array_too_deep", typed(one("uint8[]"), "M", `{"v":[[1]]}`), typed(one("uint8[][]"), "M", `{"v":[[1]]}`)},
		{"bad_array_too_shallow", typed(one("uint8[][]"), "M", `{"v":[1]}`), typed(one("uint8[]"), "M", `{"v":[1]}`)},
		{"bad_fixed_array_length", typed(one("uint8[2]"), "M", `{"v":[1]}`), typed(one("uint8[2]"), "M", `{"v":[1,2]}`)},
		{"bad_object_for_atom", typed(one("uint8"), "M", `{"v":{}}`), typed(one("uint8"), "M", `{"v":0}`)},
		{"bad_array_for_atom", typed(one("address"), "M", `{"v":["0x0000000000000000000000000000000000000001"]}`),
			typed(one("address"), "M", `{"v":"0x0000000000000000000000000000000000000001"}`)},
		{"bad_atom_for_struct", typed(one("Item")+item, "M", `{"v":1}`), typed(one("Item")+item, "M", `{"v":{"a":1}}`)},
		{"bad_uint8_out_of_range", typed(one("uint8"), "M", `{"v":256}`), typed(one("uint8"), "M", `{"v":255}`)},
		{"bad_int8_above_range", typed(one("int8"), "M", `{"v":128}`), typed(one("int8"), "M", `{"v":127}`)},
		{"bad_int8_below_range", typed(one("int8"), "M", `{"v":-129}`), typed(one("int8"), "M", `{"v":-128}`)},
		{"bad_uint_negative", typed(one("uint256"), "M", `{"v":-1}`), typed(one("int256"), "M", `{"v":-1}`)},
		{"bad_huge_int", typed(one("uint256"), "M", `{"v":1`+strings.Repeat("0", 90)+`}`), typed(one("uint256"), "M", `{"v":1`+strings.Repeat("0", 70)+`}`)},
		{"bad_huge_exponent", typed(one("uint256"), "M", `{"v":1e400}`), typed(one("uint256"), "M", `{"v":1e3}`)},
		{"bad_fraction", typed(one("uint256"), "M", `{"v":1.5}`), typed(one("uint256"), "M", `{"v":1.0}`)},
		{"bad_number_for_string", typed(one("string"), "M", `{"v":1e400}`), typed(one("string"), "M", `{"v":"1e400"}`)},
		{"bad_empty_string_int", typed(one("uint256"), "M", `{"v":""}`), typed(one("uint256"), "M", `{"v":"0"}`)},
		{"bad_signed_hex_int", typed(one("int256"), "M", `{"v":"0x-5"}`), typed(one("int256"), "M", `{"v":"-5"}`)},
		{"bad_bytes32_short", typed(one("bytes32"), "M", `{"v":"0x01"}`), typed(one("bytes1"), "M", `{"v":"0x01"}`)},
		{"bad_bytes_odd_hex", typed(one("bytes"), "M", `{"v":"0x123"}`), typed(one("bytes"), "M", `{"v":"0x1234"}`)},
		{"bad_address_without_0x", typed(one("address"), "M", `{"v":"0000000000000000000000000000000000000001"}`),
			typed(one("address"), "M", `{"v":"0x0000000000000000000000000000000000000001"}`)},
		{"bad_missing_field", typed(`,"M":[{"name":"a","type":"uint8"},{"name":"b","type":"uint8"}]`, "M", `{"a":1}`),
			typed(`,"M":[{"name":"a","type":"uint8"},{"name":"b","type":"uint8"}]`, "M", `{"a":1,"b":2}`)},
		{"bad_extra_field", typed(one("uint8"), "M", `{"v":1,"w":2}`), typed(one("uint8"), "M", `{"v":1}`)},
		// Without EIP712Domain in types, go-ethereum leaves an empty
		// string out of the domain and ethers hashes it: the signature
		// would verify under neither reading of the other.
		{"bad_empty_domain_name_without_domain_type", []byte(`{"types":{` + one("uint8")[1:] + `},"primaryType":"M","domain":{"name":"","chainId":1},"message":{"v":1}}`),
			[]byte(`{"types":{` + one("uint8")[1:] + `},"primaryType":"M","domain":{"name":"x","chainId":1},"message":{"v":1}}`)},
		{"bad_empty_domain_version_without_domain_type", []byte(`{"types":{` + one("uint8")[1:] + `},"primaryType":"M","domain":{"version":"","chainId":1},"message":{"v":1}}`),
			[]byte(`{"types":{` + one("uint8")[1:] + `},"primaryType":"M","domain":{"version":"1","chainId":1},"message":{"v":1}}`)},
		{"bad_empty_domain_salt", []byte(`{"types":{` + one("uint8")[1:] + `},"primaryType":"M","domain":{"salt":"","chainId":1},"message":{"v":1}}`),
			[]byte(`{"types":{` + one("uint8")[1:] + `},"primaryType":"M","domain":{"chainId":1},"message":{"v":1}}`)},
		{"bad_missing_domain_field", []byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"}]` + one("uint8") +
			`},"primaryType":"M","domain":{"name":"x"},"message":{"v":1}}`), typed(one("uint8"), "M", `{"v":1}`)},
		{"bad_domain_chain_id_out_of_range", []byte(`{"types":{"EIP712Domain":[{"name":"chainId","type":"uint8"}]` + one("uint8") +
			`},"primaryType":"M","domain":{"chainId":256},"message":{"v":1}}`), []byte(`{"types":{"EIP712Domain":[{"name":"chainId","type":"uint8"}]` + one("uint8") +
			`},"primaryType":"M","domain":{"chainId":255},"message":{"v":1}}`)},
		{"bad_recursive_type", typed(`,"M":[{"name":"next","type":"M[]"}]`, "M", `{"next":[]}`), typed(`,"M":[{"name":"next","type":"uint8[]"}]`, "M", `{"next":[]}`)},
		{"bad_mutually_recursive_types", typed(`,"M":[{"name":"n","type":"N[]"}],"N":[{"name":"m","type":"M[]"}]`, "M", `{"n":[]}`),
			typed(`,"M":[{"name":"n","type":"N[]"}],"N":[{"name":"m","type":"uint8[]"}]`, "M", `{"n":[]}`)},
		{"bad_field_type_undefined", typed(one("Nope"), "M", `{"v":{}}`), typed(one("Item")+item, "M", `{"v":{"a":1}}`)},
		{"bad_field_type_malformed", typed(one("uint256[x]"), "M", `{"v":[]}`), typed(one("uint256[]"), "M", `{"v":[]}`)},
		{"bad_field_type_unsized_bytes0", typed(one("bytes0"), "M", `{"v":"0x"}`), typed(one("bytes"), "M", `{"v":"0x"}`)},
		{"bad_uint7", typed(one("uint7"), "M", `{"v":1}`), typed(one("uint8"), "M", `{"v":1}`)},
		{"bad_field_name_ambiguous", typed(`,"M":[{"name":"a,uint8 b","type":"uint8"}]`, "M", `{"a,uint8 b":1}`), typed(`,"M":[{"name":"a","type":"uint8"}]`, "M", `{"a":1}`)},
		{"bad_field_declared_twice", typed(`,"M":[{"name":"a","type":"uint8"},{"name":"a","type":"uint8"}]`, "M", `{"a":1}`),
			typed(`,"M":[{"name":"a","type":"uint8"}]`, "M", `{"a":1}`)},
		{"bad_struct_named_like_atom", typed(`,"M":[{"name":"a","type":"uint8"}],"uint8":[]`, "M", `{"a":1}`), typed(`,"M":[{"name":"a","type":"uint8"}]`, "M", `{"a":1}`)},
		{"bad_too_many_struct_values", typed(one("Item[]")+item, "M", `{"v":[`+strings.Repeat(`{"a":1},`, 1100)+`{"a":1}]}`),
			typed(one("Item[]")+item, "M", `{"v":[`+strings.Repeat(`{"a":1},`, 1000)+`{"a":1}]}`)},
	}
	// Each struct value costs go-ethereum a pass over every declared type.
	var many []string
	for i := range 60 {
		many = append(many, fmt.Sprintf(`"T%d":[%s]`, i, strings.TrimSuffix(strings.Repeat(`{"name":"f","type":"uint8"},`, 8), ",")))
	}
	empties := `{"v":[` + strings.TrimSuffix(strings.Repeat(`{},`, 200), ",") + `]}`
	tests = append(tests, struct {
		name      string
		raw, good []byte
	}{"bad_struct_values_times_types_over_budget", typed(one("E[]")+`,"E":[],`+strings.Join(many, ","), "M", empties), typed(one("E[]")+`,"E":[]`, "M", empties)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := service.HashTypedData(tt.raw)
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.CodeInvalidTypedData {
				t.Fatalf("HashTypedData: %v, want %s", err, api.CodeInvalidTypedData)
			}
			if d, err := service.HashTypedData(tt.good); err != nil || len(d.Digest) != 32 {
				t.Fatalf("control: %v", err)
			}
		})
	}
}

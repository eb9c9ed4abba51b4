package service

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/nitro-signer/nitro-signer/internal/text"
)

// go-ethereum's apitypes hashes whatever it is given and trusts its shape:
// a JSON null inside an array reached encodeArrayValue as a nil interface
// and panicked, an array one level too deep was hashed as if it were the
// declared type, and intN accepted values of N bits rather than N-1. So
// typed data is checked here against its own types, completely, before
// go-ethereum sees it: every type is well formed and acyclic, and every
// value has exactly the shape its type declares. What passes is what
// go-ethereum encodes as EIP-712 says; integers are handed over as
// *big.Int, already range-checked.

var (
	// typeNamePattern is a struct type's name (go-ethereum's reference
	// type pattern without the array suffix).
	typeNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// fieldNamePattern is a Solidity identifier: a field name with a space,
	// comma or parenthesis would make encodeType ambiguous.
	fieldNamePattern = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)
	// fieldTypePattern is a base type and its array dimensions.
	fieldTypePattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)((?:\[[0-9]*\])*)$`)
	decimalPattern   = regexp.MustCompile(`^-?[0-9]{1,78}$`)
	hexIntPattern    = regexp.MustCompile(`^0[xX][0-9a-fA-F]{1,64}$`)
	hexBytesPattern  = regexp.MustCompile(`^0[xX](?:[0-9a-fA-F]{2})*$`)
	hexAddrPattern   = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
)

// primitive is an atomic EIP-712 type: its kind and, for intN, uintN and
// bytesN, N (bits for integers, bytes for bytesN).
type primitive struct {
	kind string // "address", "bool", "string", "bytes", "bytesN", "int", "uint"
	size int
}

// parsePrimitive recognizes the atomic types of EIP-712: address, bool,
// string, bytes, bytes1..bytes32, int8..int256 and uint8..uint256 in steps
// of 8, and the unsized "int" and "uint" go-ethereum takes as 256 bits
// (its own test data signs them).
func parsePrimitive(name string) (primitive, bool) {
	switch name {
	case "address", "bool", "string", "bytes":
		return primitive{kind: name}, true
	case "int", "uint":
		return primitive{kind: name, size: 256}, true
	}
	for _, p := range []struct {
		prefix, kind string
		min, max     int
		step         int
	}{{"bytes", "bytesN", 1, 32, 1}, {"uint", "uint", 8, 256, 8}, {"int", "int", 8, 256, 8}} {
		rest, ok := strings.CutPrefix(name, p.prefix)
		if !ok || rest == "" || rest[0] == '0' {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < p.min || n > p.max || n%p.step != 0 {
			return primitive{}, false
		}
		return primitive{kind: p.kind, size: n}, true
	}
	return primitive{}, false
}

// fieldType is a parsed field type: a primitive or a struct name, with
// array dimensions innermost first (-1 for a dynamic array).
type fieldType struct {
	base string
	prim *primitive
	dims []int
}

func parseFieldType(types apitypes.Types, s string) (fieldType, error) {
	m := fieldTypePattern.FindStringSubmatch(s)
	if m == nil {
		return fieldType{}, fmt.Errorf("type %q is not a type name with array dimensions", text.Truncate(s))
	}
	ft := fieldType{base: m[1]}
	if p, ok := parsePrimitive(ft.base); ok {
		ft.prim = &p
	} else if _, ok := types[ft.base]; !ok {
		return fieldType{}, fmt.Errorf("type %q is neither an EIP-712 atomic type nor a defined struct", text.Truncate(ft.base))
	}
	for dims := m[2]; dims != ""; {
		end := strings.IndexByte(dims, ']')
		n := -1
		if end > 1 {
			v, err := strconv.Atoi(dims[1:end])
			if err != nil || v < 1 || v > maxFixedArray {
				return fieldType{}, fmt.Errorf("type %q: array length must be 1..%d", text.Truncate(s), maxFixedArray)
			}
			n = v
		}
		ft.dims = append(ft.dims, n)
		dims = dims[end+1:]
	}
	if len(ft.dims) > maxArrayDims {
		return fieldType{}, fmt.Errorf("type %q: more than %d array dimensions", text.Truncate(s), maxArrayDims)
	}
	return ft, nil
}

// typedChecker checks typed data against its types.
type typedChecker struct {
	types  apitypes.Types
	fields map[string][]fieldType // by struct name, in declaration order
	// structs counts struct values checked, and work their cost to
	// go-ethereum, which re-validates every field of every type and
	// recomputes a type hash for each struct value: together they bound
	// the time hashing takes.
	structs, work, declared int
}

// checkTypes refuses types go-ethereum would encode ambiguously or not at
// all: names that are not identifiers, a struct named like an atomic type,
// a field named twice, field types that are neither atomic nor defined,
// and cycles (ethers refuses them too; go-ethereum only the direct one).
func checkTypes(types apitypes.Types) (*typedChecker, error) {
	c := &typedChecker{types: types, fields: map[string][]fieldType{}}
	for name, fields := range types {
		c.declared += 1 + len(fields)
		if !typeNamePattern.MatchString(name) {
			return nil, fmt.Errorf("type name %q is not an identifier", text.Truncate(name))
		}
		if _, ok := parsePrimitive(name); ok {
			return nil, fmt.Errorf("type name %q is an atomic type", name)
		}
		seen := map[string]bool{}
		parsed := make([]fieldType, 0, len(fields))
		for _, f := range fields {
			if !fieldNamePattern.MatchString(f.Name) {
				return nil, fmt.Errorf("type %s: field name %q is not an identifier", name, text.Truncate(f.Name))
			}
			if seen[f.Name] {
				return nil, fmt.Errorf("type %s: field %s declared twice", name, f.Name)
			}
			seen[f.Name] = true
			ft, err := parseFieldType(types, f.Type)
			if err != nil {
				return nil, fmt.Errorf("type %s field %s: %v", name, f.Name, err)
			}
			parsed = append(parsed, ft)
		}
		c.fields[name] = parsed
	}
	// Depth-first search for a cycle; 1 = on the path, 2 = done.
	state := map[string]int{}
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("type %s refers to itself", name)
		case 2:
			return nil
		}
		state[name] = 1
		for _, ft := range c.fields[name] {
			if ft.prim == nil {
				if err := visit(ft.base); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		return nil
	}
	for name := range types {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkStruct checks that data holds exactly the fields of struct name,
// each of its declared shape, and replaces integers by their *big.Int.
func (c *typedChecker) checkStruct(name string, data map[string]any) error {
	c.structs++
	c.work += c.declared
	if c.structs > maxStructValues || c.work > maxTypedWork {
		return fmt.Errorf("%d struct values of %d declared types and fields: limit %d values, %d for their product",
			c.structs, c.declared, maxStructValues, maxTypedWork)
	}
	declared := c.types[name]
	if len(data) != len(declared) {
		for k := range data {
			if !hasField(declared, k) {
				return fmt.Errorf("%s has no field %q", name, text.Truncate(k))
			}
		}
	}
	for i, f := range declared {
		v, ok := data[f.Name]
		if !ok {
			return fmt.Errorf("%s.%s is missing", name, f.Name)
		}
		nv, err := c.checkValue(c.fields[name][i], len(c.fields[name][i].dims), v)
		if err != nil {
			return fmt.Errorf("%s.%s: %v", name, f.Name, err)
		}
		data[f.Name] = nv
	}
	return nil
}

func hasField(fields []apitypes.Type, name string) bool {
	for _, f := range fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// checkValue checks v against ft with its first dims dimensions (the
// outermost array is the last one written) and returns the value to hand
// to go-ethereum.
func (c *typedChecker) checkValue(ft fieldType, dims int, v any) (any, error) {
	if v == nil {
		return nil, fmt.Errorf("null where %s is expected", ft.describe(dims))
	}
	if dims > 0 {
		arr, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s where an array (%s) is expected", kindOf(v), ft.describe(dims))
		}
		if n := ft.dims[dims-1]; n >= 0 && len(arr) != n {
			return nil, fmt.Errorf("%d elements where %s is expected", len(arr), ft.describe(dims))
		}
		for i, e := range arr {
			ne, err := c.checkValue(ft, dims-1, e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %v", i, err)
			}
			arr[i] = ne
		}
		return arr, nil
	}
	if ft.prim == nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s where struct %s is expected", kindOf(v), ft.base)
		}
		return m, c.checkStruct(ft.base, m)
	}
	return checkAtom(*ft.prim, ft.base, v)
}

func (ft fieldType) describe(dims int) string {
	s := ft.base
	for _, n := range ft.dims[:dims] {
		if n < 0 {
			s += "[]"
		} else {
			s += "[" + strconv.Itoa(n) + "]"
		}
	}
	return s
}

// kindOf names a decoded JSON value's kind, never its content.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case *big.Int, float64, json.Number, *math.HexOrDecimal256:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// checkAtom checks an atomic value. Addresses, bytes and bytesN are 0x
// hex strings (bytesN of exactly N bytes); integers are JSON integers or
// decimal or 0x hex strings within the type's range.
func checkAtom(p primitive, name string, v any) (any, error) {
	mismatch := func() (any, error) {
		return nil, fmt.Errorf("%s where %s is expected", kindOf(v), name)
	}
	switch p.kind {
	case "address":
		s, ok := v.(string)
		if !ok {
			return mismatch()
		}
		if !hexAddrPattern.MatchString(s) {
			return nil, fmt.Errorf("address is not 0x and 40 hex digits")
		}
		return s, nil
	case "bool":
		if _, ok := v.(bool); !ok {
			return mismatch()
		}
		return v, nil
	case "string":
		if _, ok := v.(string); !ok {
			return mismatch()
		}
		return v, nil
	case "bytes", "bytesN":
		s, ok := v.(string)
		if !ok {
			return mismatch()
		}
		if !hexBytesPattern.MatchString(s) {
			return nil, fmt.Errorf("%s is not 0x and pairs of hex digits", name)
		}
		if n := (len(s) - 2) / 2; p.kind == "bytesN" && n != p.size {
			return nil, fmt.Errorf("%d bytes where %s is expected", n, name)
		}
		return s, nil
	}
	// int, uint
	var b *big.Int
	switch x := v.(type) {
	case *big.Int:
		b = x
	case *math.HexOrDecimal256:
		b = (*big.Int)(x)
	case float64:
		// A JSON number with a fraction or an exponent: only an integral
		// value float64 holds exactly.
		if x > 1<<53 || x < -(1<<53) || x != float64(int64(x)) {
			return nil, fmt.Errorf("number %v is not an exact integer", x)
		}
		b = big.NewInt(int64(x))
	case string:
		var ok bool
		switch {
		case hexIntPattern.MatchString(x):
			b, ok = new(big.Int).SetString(x[2:], 16)
		case decimalPattern.MatchString(x):
			b, ok = new(big.Int).SetString(x, 10)
		}
		if !ok {
			return nil, fmt.Errorf("string is not a decimal or 0x hex integer")
		}
	default:
		return mismatch()
	}
	lo, hi := new(big.Int), new(big.Int).Lsh(big.NewInt(1), uint(p.size)) // [0, 2^N)
	if p.kind == "int" {
		hi.Rsh(hi, 1) // [-2^(N-1), 2^(N-1))
		lo.Neg(hi)
	}
	if b.Cmp(lo) < 0 || b.Cmp(hi) >= 0 {
		return nil, fmt.Errorf("integer out of range for %s", name)
	}
	return new(big.Int).Set(b), nil
}

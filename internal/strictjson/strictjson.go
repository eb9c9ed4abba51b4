// Package strictjson decodes JSON strictly, for every format the signer
// reads: the request and response envelopes, method params, the
// configuration and the parent's host answers.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/nitro-signer/nitro-signer/internal/text"
)

// MaxDepth bounds nesting in any JSON decoded here.
const MaxDepth = 16

// ErrJSON marks JSON refused by Decode.
var ErrJSON = errors.New("malformed JSON")

// Decode decodes data into v strictly: at most maxSize bytes, nesting at
// most MaxDepth, UTF-8 only, no two keys of one object equal under
// Unicode case folding (so no duplicates either), every key of an object
// decoded into a struct exactly a field's name (encoding/json would match
// it in any case), no fields v does not have, and nothing after the value.
//
// encoding/json matches "OMNI_ACCOUNT", "Omni_Account" and "omni_account"
// to one field and lets the last of them win; a broker or audit pipeline
// that reads the same bytes case-sensitively would see another value than
// the one signed. The keys of maps, and of anything under a
// json.RawMessage, an interface or a type with its own UnmarshalJSON, are
// the caller's to check (a RawMessage is checked when it is decoded with
// Decode in turn); two keys equal under case folding are refused in
// every object all the same.
func Decode(data []byte, v any, maxSize int) error {
	return decode(data, v, maxSize, false)
}

// DecodeOpen is Decode for a format whose writers may add members
// (WebAuthn's clientDataJSON, §5.8.1): a key that names no field is
// ignored, as encoding/json ignores it; one that names a field in another
// case is still refused, and so are keys equal under case folding.
func DecodeOpen(data []byte, v any, maxSize int) error {
	return decode(data, v, maxSize, true)
}

func decode(data []byte, v any, maxSize int, open bool) error {
	if len(data) > maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrJSON, len(data), maxSize)
	}
	if err := checkJSON(data, shapeOfTarget(v), open); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if !open {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrJSON, describe(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the value", ErrJSON)
	}
	return nil
}

// describe is a decoding error in the JSON's terms: a value of the wrong
// kind names its field and the kinds, never the Go type it was decoded
// into (whose name is the implementation's, not the wire's).
func describe(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	field := te.Field
	if field == "" {
		field = "the value"
	} else {
		field = strconv.Quote(field)
	}
	return fmt.Sprintf("%s: want %s, got %s", field, jsonKind(te.Type), te.Value)
}

// jsonKind names the JSON a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer in " + strconv.Itoa(t.Bits()) + "-bit range"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer in " + strconv.Itoa(t.Bits()) + "-bit range"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 string"
		}
		return "array"
	case reflect.Array:
		return "array"
	}
	return "object"
}

var errNotUTF8 = fmt.Errorf("%w: not UTF-8", ErrJSON)

// checkJSON refuses malformed JSON, text that is not UTF-8, keys equal
// under case folding, keys that do not exactly name a field of the struct
// they are decoded into, and deep nesting, before anything is decoded into
// Go values. (encoding/json turns invalid UTF-8 into U+FFFD, so two keys of
// different invalid bytes would decode as one; RFC 8259 requires UTF-8
// anyway.) Valid JSON is checked in one pass over the bytes beside the
// target's shape; keys with escapes are unescaped before they are compared.
func checkJSON(data []byte, sh *shape, open bool) error {
	if !utf8.Valid(data) {
		return errNotUTF8
	}
	if !json.Valid(data) {
		return checkJSONTokens(data) // for its error message
	}
	s := scanners.Get().(*scanner)
	s.data, s.i, s.fold, s.open = data, 0, s.fold[:0], open
	err := s.value(sh, 0)
	s.data = nil
	if cap(s.fold) <= 4096 {
		scanners.Put(s)
	}
	return err
}

var scanners = sync.Pool{New: func() any { return &scanner{fold: make([]byte, 0, 256)} }}

// scanner walks JSON that json.Valid accepted.
type scanner struct {
	data []byte
	i    int
	// fold holds the folded keys of the objects open on the walk.
	fold []byte
	// open lets keys that name no field through (DecodeOpen).
	open bool
}

// span is a folded key in scanner.fold.
type span struct{ off, end int }

// smallObject is how many keys an object compares pairwise before it
// switches to a set.
const smallObject = 16

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(sh *shape, depth int) error {
	s.space()
	switch s.data[s.i] {
	case '{':
		return s.object(sh, depth+1)
	case '[':
		return s.array(sh, depth+1)
	case '"':
		s.str()
	default: // number, true, false, null
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
	}
	return nil
}

// str skips the string at s.i, quotes included, and returns where it
// starts and whether it has an escape.
func (s *scanner) str() (start int, escaped bool) {
	start = s.i
	for s.i++; s.data[s.i] != '"'; s.i++ {
		if s.data[s.i] == '\\' {
			escaped = true
			s.i++
		}
	}
	s.i++
	return start, escaped
}

func (s *scanner) array(sh *shape, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrJSON, MaxDepth)
	}
	elem := anyShape
	if sh.kind == shapeList {
		elem = sh.elem
	}
	s.i++ // [
	s.space()
	if s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(elem, depth); err != nil {
			return err
		}
		s.space()
		c := s.data[s.i]
		s.i++
		if c == ']' {
			return nil
		}
	}
}

func (s *scanner) object(sh *shape, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrJSON, MaxDepth)
	}
	mark := len(s.fold)
	err := s.members(sh, depth)
	s.fold = s.fold[:mark]
	return err
}

// members checks the members of the object at s.i.
func (s *scanner) members(sh *shape, depth int) error {
	var small [smallObject]span
	n := 0
	var set map[string]struct{}
	s.i++ // {
	s.space()
	if s.data[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.space()
		start, escaped := s.str()
		key := s.data[start+1 : s.i-1]
		if escaped {
			var k string
			if err := json.Unmarshal(s.data[start:s.i], &k); err != nil {
				return fmt.Errorf("%w: %v", ErrJSON, err)
			}
			key = []byte(k)
		}
		off := len(s.fold)
		s.fold = appendFold(s.fold, key)
		folded := s.fold[off:]
		dup := false
		if set != nil {
			_, dup = set[string(folded)]
			set[string(folded)] = struct{}{}
		} else {
			for _, k := range small[:n] {
				dup = dup || bytes.Equal(s.fold[k.off:k.end], folded)
			}
			if n < smallObject {
				small[n] = span{off, len(s.fold)}
				n++
			} else {
				set = make(map[string]struct{}, 4*smallObject)
				for _, k := range small {
					set[string(s.fold[k.off:k.end])] = struct{}{}
				}
				set[string(folded)] = struct{}{}
			}
		}
		if dup {
			return fmt.Errorf("%w: key %q repeats another key of its object (keys are compared regardless of case)", ErrJSON, text.Truncate(string(key)))
		}
		val := anyShape
		switch sh.kind {
		case shapeStruct:
			f, ok := sh.fields[string(key)]
			switch {
			case ok:
				val = f
			case sh.foldedName(folded) != "":
				return fmt.Errorf("%w: key %q names field %q in another case", ErrJSON, text.Truncate(string(key)), sh.foldedName(folded))
			case !s.open:
				return fmt.Errorf("%w: unknown field %q", ErrJSON, text.Truncate(string(key)))
			}
		case shapeMap:
			val = sh.elem
		}
		s.space()
		s.i++ // :
		if err := s.value(val, depth); err != nil {
			return err
		}
		s.space()
		c := s.data[s.i]
		s.i++
		if c == '}' {
			return nil
		}
	}
}

// appendFold appends k folded so that two keys fold to the same bytes
// exactly when bytes.EqualFold — and so encoding/json, which matches field
// names with it — takes them for one: each rune becomes the smallest rune
// of its Unicode simple-folding orbit ('k', 'K' and the Kelvin sign U+212A
// all become 'K'; 's', 'S' and the long s U+017F become 'S').
func appendFold(dst, k []byte) []byte {
	for i := 0; i < len(k); {
		c := k[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(k[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

// checkJSONTokens walks the tokens of data, refusing keys equal under case
// folding and deep nesting; keys are compared after unescaping. It knows
// no target type; Decode uses it for the error message of invalid JSON,
// and the fuzz tests hold the scanner to it.
func checkJSONTokens(data []byte) error {
	if !utf8.Valid(data) {
		return errNotUTF8
	}
	type level struct {
		object bool
		keys   map[string]struct{}
		key    bool // the next token in this object is a key
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are not the question here; 1E1000 is valid JSON
	var stack []level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return fmt.Errorf("%w: unexpected end", ErrJSON)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrJSON, err)
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if top.key {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:n-1]
					continue
				}
				k, _ := tok.(string)
				folded := string(appendFold(nil, []byte(k)))
				if _, dup := top.keys[folded]; dup {
					return fmt.Errorf("%w: key %q repeats another key of its object (keys are compared regardless of case)", ErrJSON, text.Truncate(k))
				}
				top.keys[folded] = struct{}{}
				top.key = false
				continue
			}
			top.key = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{object: true, keys: map[string]struct{}{}, key: true})
		case json.Delim('['):
			stack = append(stack, level{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > MaxDepth {
			return fmt.Errorf("%w: nested deeper than %d", ErrJSON, MaxDepth)
		}
	}
}

// shapeOfTarget is the shape of what v points to.
func shapeOfTarget(v any) *shape {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return anyShape // json.Decode refuses it
	}
	return shapeOf(t.Elem())
}

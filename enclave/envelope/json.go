package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrJSON marks JSON refused by DecodeJSON.
var ErrJSON = errors.New("malformed JSON")

// DecodeJSON decodes data into v strictly: at most maxSize bytes, nesting at
// most MaxJSONDepth, no duplicate object keys, no fields v does not have, and
// nothing after the value.
func DecodeJSON(data []byte, v any, maxSize int) error {
	if len(data) > maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrJSON, len(data), maxSize)
	}
	if err := checkJSON(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the value", ErrJSON)
	}
	return nil
}

// checkJSON refuses malformed JSON, text that is not UTF-8, duplicate keys
// and deep nesting before anything is decoded into Go values. (encoding/json
// turns invalid UTF-8 into U+FFFD, so two keys of different invalid bytes
// would decode as one; RFC 8259 requires UTF-8 anyway.) The common case — valid JSON whose
// keys have no escapes — is checked in one pass over the bytes; a key with
// an escape sends the document to the token walk, which compares keys
// after unescaping.
var errNotUTF8 = fmt.Errorf("%w: not UTF-8", ErrJSON)

func checkJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errNotUTF8
	}
	if !json.Valid(data) {
		return checkJSONTokens(data) // for its error message
	}
	escaped, err := scanKeys(data)
	if err != nil {
		return err
	}
	if escaped {
		return checkJSONTokens(data)
	}
	return nil
}

// scanKeys walks valid JSON bytes, tracking nesting and the keys of each
// open object. It reports whether any key contains an escape (and then
// stops comparing: the caller falls back to the token walk).
func scanKeys(data []byte) (escaped bool, err error) {
	type level struct {
		object bool
		keys   [][]byte            // the first few keys
		set    map[string]struct{} // all keys, once there are many
	}
	var stack []level
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			stack = append(stack, level{object: c == '{'})
			if len(stack) > MaxJSONDepth {
				return false, fmt.Errorf("%w: nested deeper than %d", ErrJSON, MaxJSONDepth)
			}
		case '}', ']':
			stack = stack[:len(stack)-1]
		case '"':
			start := i + 1
			hasEscape := false
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					hasEscape = true
					i++
				}
			}
			str := data[start:i]
			// A string is a key when the next non-space byte is ':'.
			j := i + 1
			for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
				j++
			}
			if j < len(data) && data[j] == ':' && len(stack) > 0 && stack[len(stack)-1].object {
				if hasEscape {
					return true, nil
				}
				top := &stack[len(stack)-1]
				dup := false
				if top.set != nil {
					_, dup = top.set[string(str)]
					top.set[string(str)] = struct{}{}
				} else {
					for _, k := range top.keys {
						dup = dup || bytes.Equal(k, str)
					}
					top.keys = append(top.keys, str)
					if len(top.keys) > 16 { // linear search stops paying
						top.set = make(map[string]struct{}, 2*len(top.keys))
						for _, k := range top.keys {
							top.set[string(k)] = struct{}{}
						}
					}
				}
				if dup {
					return false, fmt.Errorf("%w: duplicate key %q", ErrJSON, str)
				}
			}
		}
	}
	return false, nil
}

// checkJSONTokens walks the tokens of data, refusing duplicate keys and deep
// nesting; keys are compared after unescaping.
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
				if _, dup := top.keys[k]; dup {
					return fmt.Errorf("%w: duplicate key %q", ErrJSON, k)
				}
				top.keys[k] = struct{}{}
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
		if len(stack) > MaxJSONDepth {
			return fmt.Errorf("%w: nested deeper than %d", ErrJSON, MaxJSONDepth)
		}
	}
}

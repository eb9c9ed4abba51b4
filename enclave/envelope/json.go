package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// checkJSON walks the tokens of data, refusing duplicate keys and deep
// nesting before anything is decoded into Go values.
func checkJSON(data []byte) error {
	type level struct {
		object bool
		keys   map[string]struct{}
		key    bool // the next token in this object is a key
	}
	dec := json.NewDecoder(bytes.NewReader(data))
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

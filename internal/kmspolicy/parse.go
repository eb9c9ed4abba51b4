package kmspolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/nitro-signer/nitro-signer/internal/text"
)

// Parse reads a key policy as `aws kms get-key-policy --output text
// --query Policy` prints it (whitespace around it is ignored): strict
// JSON of at most MaxSize bytes, only the characters AWS allows in a key
// policy (printable ASCII and Latin-1, tab, line feed, carriage return),
// no key twice in an object, no condition key twice under one operator
// even in another case, and only the elements of the policy grammar
// (Version, Id, Statement; Sid, Effect, Principal or NotPrincipal, Action
// or NotAction, Resource or NotResource, Condition). A single string and a
// list of one are the same; so are a JSON boolean or number condition
// value and its text. Errors wrap ErrPolicy.
func Parse(b []byte) (*Document, error) {
	b = bytes.TrimSpace(b)
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, AWS KMS stores at most %d", ErrPolicy, len(b), MaxSize)
	}
	if err := checkText(string(b)); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the document", ErrPolicy)
	}
	return document(v)
}

// checkText holds text to the characters a key policy may contain.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: not UTF-8", ErrPolicy)
	}
	for _, r := range s {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0x7e && r < 0xa0 || r > 0xff) {
			return fmt.Errorf("%w: character %U, which a key policy cannot contain", ErrPolicy, r)
		}
	}
	return nil
}

// value is a JSON value whose objects keep their members in order.
type value struct {
	kind    byte // 's' string, 'l' literal (number, boolean), 'z' null, 'a' array, 'o' object
	s       string
	items   []value
	members []field
}

type field struct {
	key string
	v   value
}

func readValue(dec *json.Decoder, depth int) (value, error) {
	if depth > maxDepth {
		return value{}, fmt.Errorf("%w: nested deeper than %d", ErrPolicy, maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return value{}, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	switch t := tok.(type) {
	case string:
		if err := checkText(t); err != nil {
			return value{}, err
		}
		return value{kind: 's', s: t}, nil
	case json.Number:
		return value{kind: 'l', s: t.String()}, nil
	case bool:
		return value{kind: 'l', s: fmt.Sprint(t)}, nil
	case nil:
		return value{kind: 'z'}, nil
	case json.Delim:
		switch t {
		case '[':
			v := value{kind: 'a'}
			for dec.More() {
				if len(v.items) == maxValues {
					return value{}, fmt.Errorf("%w: a list of more than %d values", ErrPolicy, maxValues)
				}
				item, err := readValue(dec, depth+1)
				if err != nil {
					return value{}, err
				}
				v.items = append(v.items, item)
			}
			return v, closing(dec)
		case '{':
			v := value{kind: 'o'}
			seen := map[string]bool{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return value{}, fmt.Errorf("%w: %v", ErrPolicy, err)
				}
				key := tok.(string)
				if err := checkText(key); err != nil {
					return value{}, err
				}
				if seen[key] {
					return value{}, fmt.Errorf("%w: key %q appears twice in one object", ErrPolicy, text.Truncate(key))
				}
				seen[key] = true
				if len(v.members) == maxValues {
					return value{}, fmt.Errorf("%w: an object of more than %d members", ErrPolicy, maxValues)
				}
				item, err := readValue(dec, depth+1)
				if err != nil {
					return value{}, err
				}
				v.members = append(v.members, field{key, item})
			}
			return v, closing(dec)
		}
	}
	return value{}, fmt.Errorf("%w: unexpected %v", ErrPolicy, tok)
}

func closing(dec *json.Decoder) error {
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	return nil
}

func (v value) what() string {
	switch v.kind {
	case 's':
		return "a string"
	case 'l':
		return "a number or boolean"
	case 'z':
		return "null"
	case 'a':
		return "a list"
	}
	return "an object"
}

func document(v value) (*Document, error) {
	if v.kind != 'o' {
		return nil, fmt.Errorf("%w: the document is %s, want an object", ErrPolicy, v.what())
	}
	d := &Document{}
	var statements *value
	for _, m := range v.members {
		var err error
		switch m.key {
		case "Version":
			d.Version, err = str(m.v, "Version")
		case "Id":
			d.ID, err = str(m.v, "Id")
		case "Statement":
			statements = &m.v
		default:
			err = fmt.Errorf("%w: unknown element %q of the document", ErrPolicy, text.Truncate(m.key))
		}
		if err != nil {
			return nil, err
		}
	}
	if statements == nil {
		return nil, fmt.Errorf("%w: no Statement", ErrPolicy)
	}
	items := []value{*statements}
	if statements.kind == 'a' {
		items = statements.items
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: Statement is empty", ErrPolicy)
	}
	if len(items) > maxStatements {
		return nil, fmt.Errorf("%w: more than %d statements", ErrPolicy, maxStatements)
	}
	for i, item := range items {
		s, err := statement(item)
		if err != nil {
			return nil, fmt.Errorf("%w (statement %d)", err, i)
		}
		d.Statements = append(d.Statements, *s)
	}
	return d, nil
}

func statement(v value) (*Statement, error) {
	if v.kind != 'o' {
		return nil, fmt.Errorf("%w: a statement is %s, want an object", ErrPolicy, v.what())
	}
	s := &Statement{}
	seen := map[string]bool{}
	for _, m := range v.members {
		seen[m.key] = true
		var err error
		switch m.key {
		case "Sid":
			s.Sid, err = str(m.v, "Sid")
		case "Effect":
			s.Effect, err = str(m.v, "Effect")
			if err == nil && s.Effect != "Allow" && s.Effect != "Deny" {
				err = fmt.Errorf("%w: Effect %q, want Allow or Deny", ErrPolicy, text.Truncate(s.Effect))
			}
		case "Principal":
			s.Principal, err = principal(m.v, m.key)
		case "NotPrincipal":
			s.NotPrincipal, err = principal(m.v, m.key)
		case "Action":
			s.Action, err = strs(m.v, m.key)
		case "NotAction":
			s.NotAction, err = strs(m.v, m.key)
		case "Resource":
			s.Resource, err = strs(m.v, m.key)
		case "NotResource":
			s.NotResource, err = strs(m.v, m.key)
		case "Condition":
			s.Conditions, err = conditions(m.v)
		default:
			err = fmt.Errorf("%w: unknown element %q of a statement", ErrPolicy, text.Truncate(m.key))
		}
		if err != nil {
			return nil, err
		}
	}
	if !seen["Effect"] {
		return nil, fmt.Errorf("%w: a statement without Effect", ErrPolicy)
	}
	for _, pair := range [][2]string{{"Principal", "NotPrincipal"}, {"Action", "NotAction"}, {"Resource", "NotResource"}} {
		if seen[pair[0]] == seen[pair[1]] {
			return nil, fmt.Errorf("%w: a statement needs exactly one of %s and %s", ErrPolicy, pair[0], pair[1])
		}
	}
	return s, nil
}

func str(v value, what string) (string, error) {
	if v.kind != 's' {
		return "", fmt.Errorf("%w: %s is %s, want a string", ErrPolicy, what, v.what())
	}
	return v.s, nil
}

// strs reads a string or a non-empty list of strings.
func strs(v value, what string) ([]string, error) {
	if v.kind == 's' {
		return []string{v.s}, nil
	}
	if v.kind != 'a' || len(v.items) == 0 {
		return nil, fmt.Errorf("%w: %s is %s, want a string or a list of strings", ErrPolicy, what, describeList(v))
	}
	out := make([]string, 0, len(v.items))
	for _, item := range v.items {
		s, err := str(item, what+" (in a list)")
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func describeList(v value) string {
	if v.kind == 'a' {
		return "an empty list"
	}
	return v.what()
}

func principal(v value, what string) (*Principal, error) {
	if v.kind == 's' {
		if v.s != "*" {
			return nil, fmt.Errorf("%w: %s %q: a string principal can only be \"*\"", ErrPolicy, what, text.Truncate(v.s))
		}
		return &Principal{Any: true}, nil
	}
	if v.kind != 'o' || len(v.members) == 0 {
		return nil, fmt.Errorf("%w: %s is %s, want \"*\" or an object of principals", ErrPolicy, what, v.what())
	}
	p := &Principal{}
	for _, m := range v.members {
		var into *[]string
		switch m.key {
		case "AWS":
			into = &p.AWS
		case "Service":
			into = &p.Service
		case "Federated":
			into = &p.Federated
		case "CanonicalUser":
			into = &p.CanonicalUser
		default:
			return nil, fmt.Errorf("%w: unknown principal type %q", ErrPolicy, text.Truncate(m.key))
		}
		var err error
		if *into, err = strs(m.v, what+" "+m.key); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func conditions(v value) ([]Condition, error) {
	if v.kind != 'o' || len(v.members) == 0 {
		return nil, fmt.Errorf("%w: Condition is %s, want an object of operators", ErrPolicy, v.what())
	}
	var out []Condition
	operators := map[string]string{}
	for _, op := range v.members {
		if op.key == "" {
			return nil, fmt.Errorf("%w: an empty condition operator", ErrPolicy)
		}
		if other, dup := operators[strings.ToLower(op.key)]; dup {
			return nil, fmt.Errorf("%w: condition operators %q and %q differ only in case", ErrPolicy, text.Truncate(other), text.Truncate(op.key))
		}
		operators[strings.ToLower(op.key)] = op.key
		if op.v.kind != 'o' || len(op.v.members) == 0 {
			return nil, fmt.Errorf("%w: condition operator %q holds %s, want an object of condition keys", ErrPolicy, text.Truncate(op.key), op.v.what())
		}
		keys := map[string]string{}
		for _, k := range op.v.members {
			// Condition key names compare without case in AWS: two that
			// differ only in case are one key written twice.
			if other, dup := keys[strings.ToLower(k.key)]; dup {
				return nil, fmt.Errorf("%w: condition keys %q and %q under %s are one key (keys compare without case)", ErrPolicy, text.Truncate(other), text.Truncate(k.key), text.Truncate(op.key))
			}
			keys[strings.ToLower(k.key)] = k.key
			if k.key == "" {
				return nil, fmt.Errorf("%w: an empty condition key", ErrPolicy)
			}
			values, err := conditionValues(k.v)
			if err != nil {
				return nil, fmt.Errorf("%w (%s %s)", err, text.Truncate(op.key), text.Truncate(k.key))
			}
			out = append(out, Condition{Operator: op.key, Key: k.key, Values: values})
		}
	}
	return sortedConditions(out), nil
}

func conditionValues(v value) ([]string, error) {
	scalar := func(v value) (string, error) {
		if v.kind == 's' || v.kind == 'l' {
			return v.s, nil
		}
		return "", fmt.Errorf("%w: a condition value is %s", ErrPolicy, v.what())
	}
	if v.kind != 'a' {
		s, err := scalar(v)
		return []string{s}, err
	}
	if len(v.items) == 0 {
		return nil, fmt.Errorf("%w: a condition with an empty list of values", ErrPolicy)
	}
	out := make([]string, 0, len(v.items))
	for _, item := range v.items {
		s, err := scalar(item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

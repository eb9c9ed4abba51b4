package kmspolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// PolicyVersion is the policy language version whose grammar the
// documents here follow; AWS's documents name it too.
const PolicyVersion = "2012-10-17"

// ErrPolicy marks a key policy document Parse refuses.
var ErrPolicy = errors.New("kmspolicy: malformed key policy")

// Document is a key policy.
type Document struct {
	// Version is the policy language version ("" when absent).
	Version string
	// ID is the document's optional Id.
	ID         string
	Statements []Statement
}

// Statement is one statement of a key policy. Exactly one of Principal and
// NotPrincipal, of Action and NotAction, and of Resource and NotResource
// is set.
type Statement struct {
	Sid string
	// Effect is "Allow" or "Deny".
	Effect                  string
	Principal, NotPrincipal *Principal
	Action, NotAction       []string
	Resource, NotResource   []string
	// Conditions, sorted by operator and then key (keys compare without
	// case, as AWS compares them).
	Conditions []Condition

	// release is the version of the release a rendered statement allows;
	// admin marks the rendered administrators' statement.
	release string
	admin   bool
}

// Principal is a statement's principal: "*" (Any), or principals by type.
type Principal struct {
	Any                                    bool
	AWS, Service, Federated, CanonicalUser []string
}

// Condition is one key of one condition operator: "StringEqualsIgnoreCase":
// {"kms:RecipientAttestation:PCR0": "…"}. Values are strings as written;
// a JSON boolean or number is its literal text.
type Condition struct {
	Operator string
	Key      string
	Values   []string
}

// Marshal writes the document as `aws kms put-key-policy --policy
// file://…` reads it: indented JSON, elements in the grammar's order, a
// list written as a string when it has one value.
func (d *Document) Marshal() ([]byte, error) {
	top := object{}
	if d.Version != "" {
		top = append(top, member{"Version", d.Version})
	}
	if d.ID != "" {
		top = append(top, member{"Id", d.ID})
	}
	var statements []any
	for i := range d.Statements {
		s, err := d.Statements[i].wire()
		if err != nil {
			return nil, fmt.Errorf("kmspolicy: statement %d: %w", i, err)
		}
		statements = append(statements, s)
	}
	top = append(top, member{"Statement", statements})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	if buf.Len() > MaxSize+1 {
		return nil, fmt.Errorf("kmspolicy: a key policy of %d bytes: AWS KMS stores at most %d", buf.Len()-1, MaxSize)
	}
	return buf.Bytes(), nil
}

func (s *Statement) wire() (object, error) {
	if s.Effect != "Allow" && s.Effect != "Deny" {
		return nil, fmt.Errorf("effect %q", s.Effect)
	}
	o := object{}
	if s.Sid != "" {
		o = append(o, member{"Sid", s.Sid})
	}
	o = append(o, member{"Effect", s.Effect})
	pick := func(name string, a, b []string, nameB string) error {
		switch {
		case (a == nil) == (b == nil):
			return fmt.Errorf("exactly one of %s and %s", name, nameB)
		case a != nil:
			o = append(o, member{name, list(a)})
		default:
			o = append(o, member{nameB, list(b)})
		}
		return nil
	}
	switch {
	case (s.Principal == nil) == (s.NotPrincipal == nil):
		return nil, errors.New("exactly one of Principal and NotPrincipal")
	case s.Principal != nil:
		o = append(o, member{"Principal", s.Principal.wire()})
	default:
		o = append(o, member{"NotPrincipal", s.NotPrincipal.wire()})
	}
	if err := pick("Action", s.Action, s.NotAction, "NotAction"); err != nil {
		return nil, err
	}
	if err := pick("Resource", s.Resource, s.NotResource, "NotResource"); err != nil {
		return nil, err
	}
	if len(s.Conditions) > 0 {
		cond := object{}
		for _, c := range sortedConditions(s.Conditions) {
			if len(cond) == 0 || cond[len(cond)-1].key != c.Operator {
				cond = append(cond, member{c.Operator, object{}})
			}
			last := &cond[len(cond)-1]
			last.value = append(last.value.(object), member{c.Key, list(c.Values)})
		}
		o = append(o, member{"Condition", cond})
	}
	return o, nil
}

func (p *Principal) wire() any {
	if p.Any {
		return "*"
	}
	o := object{}
	for _, m := range []struct {
		name string
		v    []string
	}{{"AWS", p.AWS}, {"Service", p.Service}, {"Federated", p.Federated}, {"CanonicalUser", p.CanonicalUser}} {
		if m.v != nil {
			o = append(o, member{m.name, list(m.v)})
		}
	}
	return o
}

// list is one value as a string, several as a list.
func list(v []string) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}

// sortedConditions orders conditions by operator, then key without case.
func sortedConditions(cs []Condition) []Condition {
	out := slices.Clone(cs)
	slices.SortStableFunc(out, func(a, b Condition) int {
		if c := strings.Compare(a.Operator, b.Operator); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.Key), strings.ToLower(b.Key))
	})
	return out
}

// object is a JSON object whose members keep their order.
type object []member

type member struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := marshalNoEscape(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshalNoEscape(m.value)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

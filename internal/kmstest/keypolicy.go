package kmstest

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

// The condition operators the local KMS evaluates (each also with
// IfExists); a key policy with another is refused at Start rather than
// evaluated wrongly.
var operators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"StringLike": true, "StringNotLike": true,
	"DateEquals": true, "DateNotEquals": true, "DateLessThan": true, "DateLessThanEquals": true,
	"DateGreaterThan": true, "DateGreaterThanEquals": true,
	"Bool": true, "ArnEquals": true, "ArnNotEquals": true, "ArnLike": true, "ArnNotLike": true, "Null": true,
}

// parseKeyPolicy reads a key policy and checks that the local KMS can
// evaluate every condition in it.
func parseKeyPolicy(b []byte) (*kmspolicy.Document, error) {
	d, err := kmspolicy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("kmstest: key policy: %w", err)
	}
	for _, s := range d.Statements {
		for _, c := range s.Conditions {
			if base, _ := strings.CutSuffix(c.Operator, "IfExists"); !operators[base] {
				return nil, fmt.Errorf("kmstest: key policy: condition operator %q is not one the local KMS evaluates", c.Operator)
			}
		}
	}
	return d, nil
}

// call is what a key policy is evaluated on.
type call struct {
	action   string // "kms:Decrypt"
	role     string // the caller's role ARN
	account  string // the caller's account
	resource string // the key's ARN
	// context holds the condition keys the request has, by lower-case
	// name: aws:CurrentTime, the encryption context, and — only when the
	// request carries a Recipient whose document verified — the
	// document's PCRs.
	context map[string]string
}

func newCall(action string, caller *Account, k *key, ec map[string]string, doc *attestation.Document, now time.Time) *call {
	c := &call{action: action, role: caller.role(), account: caller.ID, resource: k.arn, context: map[string]string{
		"aws:currenttime": now.UTC().Format(time.RFC3339), "aws:principalarn": caller.role(),
		"aws:principalaccount": caller.ID, "kms:calleraccount": caller.ID,
	}}
	for name, v := range ec {
		c.context["kms:encryptioncontext:"+strings.ToLower(name)] = v
	}
	if doc != nil {
		for i, v := range doc.PCRs {
			c.context[fmt.Sprintf("kms:recipientattestation:pcr%d", i)] = hex.EncodeToString(v)
		}
		if v, ok := doc.PCRs[0]; ok {
			c.context["kms:recipientattestation:imagesha384"] = hex.EncodeToString(v)
		}
	}
	return c
}

// authorize evaluates the key policy as AWS does: an explicit Deny that
// applies refuses, else an Allow that applies allows, else the call is
// refused. A denial says which condition of each statement that would
// otherwise allow the call did not hold.
func authorize(d *kmspolicy.Document, c *call) *kmsError {
	var allowed bool
	var why []string
	for i := range d.Statements {
		s := &d.Statements[i]
		if !principalMatches(s, c) || !actionMatches(s, c.action) || !resourceMatches(s, c.resource) {
			continue
		}
		failed := failedCondition(s, c)
		switch {
		case failed == "" && s.Effect == "Deny":
			return &kmsError{400, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny in a resource-based policy (statement %d)", c.role, c.action, c.resource, i+1)}
		case failed == "":
			allowed = true
		case s.Effect == "Allow":
			why = append(why, fmt.Sprintf("statement %d (%q): %s", i+1, s.Sid, failed))
		}
	}
	if allowed {
		return nil
	}
	msg := fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no resource-based policy allows the %s action", c.role, c.action, c.resource, c.action)
	if len(why) > 0 {
		msg += " (" + strings.Join(why, "; ") + ")"
	}
	return &kmsError{400, "AccessDeniedException", msg}
}

// principalMatches: "*"; the caller's role ARN; its account, as an id or
// as arn:…:iam::ACCOUNT:root. The root principal delegates to the
// account's IAM policies, which the local KMS takes to allow everything —
// the pessimistic reading, so a statement granting the account more than
// it should shows here as it would in an account whose IAM policies are
// broad.
func principalMatches(s *kmspolicy.Statement, c *call) bool {
	p, negate := s.Principal, false
	if p == nil {
		p, negate = s.NotPrincipal, true
	}
	match := p.Any
	for _, a := range p.AWS {
		match = match || a == "*" || a == c.role || a == c.account || strings.HasPrefix(a, "arn:") && strings.HasSuffix(a, ":iam::"+c.account+":root")
	}
	return match != negate
}

func actionMatches(s *kmspolicy.Statement, action string) bool {
	action = strings.ToLower(action)
	patterns, negate := s.Action, false
	if patterns == nil {
		patterns, negate = s.NotAction, true
	}
	for _, p := range patterns {
		if kmspolicy.Glob(strings.ToLower(p), action) {
			return !negate
		}
	}
	return negate
}

func resourceMatches(s *kmspolicy.Statement, arn string) bool {
	patterns, negate := s.Resource, false
	if patterns == nil {
		patterns, negate = s.NotResource, true
	}
	for _, p := range patterns {
		if kmspolicy.Glob(p, arn) {
			return !negate
		}
	}
	return negate
}

// failedCondition names the first condition of s that does not hold, ""
// when all do. Conditions of one statement all hold (and); the values of
// one condition are alternatives (or), which is why a policy must never
// list the PCRs of two releases under one key.
func failedCondition(s *kmspolicy.Statement, c *call) string {
	for _, cond := range s.Conditions {
		got, present := c.context[strings.ToLower(cond.Key)]
		if !holds(cond.Operator, got, present, cond.Values) {
			if !present {
				return cond.Key + " is not in the request"
			}
			return cond.Key + " does not hold"
		}
	}
	return ""
}

func holds(op, got string, present bool, values []string) bool {
	base, ifExists := strings.CutSuffix(op, "IfExists")
	if base == "Null" {
		// Null: "true" holds when the key is absent.
		return strings.EqualFold(values[0], "true") != present
	}
	negated := strings.Contains(base, "Not")
	if !present {
		return ifExists || negated
	}
	positive := strings.Replace(base, "Not", "", 1)
	any := false
	for _, v := range values {
		any = any || compare(positive, got, v)
	}
	return any != negated
}

func compare(op, got, v string) bool {
	switch op {
	case "StringEquals":
		return got == v
	case "StringEqualsIgnoreCase", "Bool":
		return strings.EqualFold(got, v)
	case "StringLike", "ArnLike", "ArnEquals":
		return kmspolicy.Glob(v, got)
	}
	g, err1 := time.Parse(time.RFC3339, got)
	w, err2 := time.Parse(time.RFC3339, v)
	if err1 != nil || err2 != nil {
		return false
	}
	switch op {
	case "DateEquals":
		return g.Equal(w)
	case "DateLessThan":
		return g.Before(w)
	case "DateLessThanEquals":
		return !g.After(w)
	case "DateGreaterThan":
		return g.After(w)
	case "DateGreaterThanEquals":
		return !g.Before(w)
	}
	return false
}

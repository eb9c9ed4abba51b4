package kmspolicy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/text"
)

// Kind classifies a Difference.
type Kind string

// The kinds of difference.
const (
	// KindDocument: the document's Version differs.
	KindDocument Kind = "document"
	// KindMissing: a statement the manifest needs is not in the policy.
	KindMissing Kind = "missing"
	// KindExtra: a statement of the policy that no release (nor the
	// administrators) accounts for.
	KindExtra Kind = "extra"
	// KindChanged: an element or a condition of a statement differs.
	KindChanged Kind = "changed"
	// KindMixing: an attestation condition lists several values, so PCRs
	// of different releases could pair.
	KindMixing Kind = "mixing"
	// KindNoRecipient: an attestation condition that holds when the
	// request carries no Recipient at all.
	KindNoRecipient Kind = "no_recipient"
	// KindUnattested: a statement allows an action that yields or wraps
	// key material without any attestation condition.
	KindUnattested Kind = "unattested"
)

// Difference is one way a live policy differs from the manifest's.
type Difference struct {
	Kind Kind
	// Release is the version of the release concerned, "" when none is.
	Release string
	// Text says it in one line.
	Text string
}

func (d Difference) String() string { return d.Text }

// SensitiveActions are the actions that give key material away, or let
// it be wrapped, outside an attested enclave when a statement allows them
// without an attestation condition: Decrypt and the data-key calls answer
// in plaintext without a Recipient; Encrypt and ReEncrypt wrap a data key
// the caller knows (a keyring sealed under it would be unsealed by the
// enclave as its own); CreateGrant can hand any of them out.
var SensitiveActions = []string{
	"kms:CreateGrant", "kms:Decrypt", "kms:DeriveSharedSecret", "kms:Encrypt",
	"kms:GenerateDataKey", "kms:GenerateDataKeyPair", "kms:ReEncryptFrom", "kms:ReEncryptTo",
}

// Compare names every difference between want (from Render) and got (a
// live policy from Parse), and every hazard in got: a list-valued
// attestation condition, an attestation condition that holds without a
// Recipient, an allowance of a sensitive action with no attestation
// condition. It returns nil when the two are equivalent: the same
// statements, up to order, Sid, case where AWS ignores it and the
// normalisations Parse accepts.
func Compare(want, got *Document) []Difference {
	var out []Difference
	if got.Version != want.Version {
		out = append(out, Difference{Kind: KindDocument, Text: fmt.Sprintf("Version is %s, want %q", quoteOrAbsent(got.Version), want.Version)})
	}
	ws := make([]norm, len(want.Statements))
	for i := range want.Statements {
		ws[i] = normalize(&want.Statements[i])
	}
	gs := make([]norm, len(got.Statements))
	for i := range got.Statements {
		gs[i] = normalize(&got.Statements[i])
	}
	pair := make([]int, len(ws)) // want index → got index
	taken := make([]bool, len(gs))
	for i := range pair {
		pair[i] = -1
	}
	// Equivalent statements first, then each remaining live statement
	// with the wanted one it resembles most.
	for wi := range ws {
		for gi := range gs {
			if !taken[gi] && ws[wi].equal(&gs[gi]) {
				pair[wi], taken[gi] = gi, true
				break
			}
		}
	}
	for gi := range gs {
		if taken[gi] {
			continue
		}
		best, bestScore := -1, 0
		for wi := range ws {
			if pair[wi] >= 0 {
				continue
			}
			if s := resemblance(&ws[wi], &gs[gi]); s > bestScore {
				best, bestScore = wi, s
			}
		}
		if best >= 0 {
			pair[best], taken[gi] = gi, true
		}
	}
	for wi := range ws {
		w := &ws[wi]
		if pair[wi] < 0 {
			out = append(out, Difference{Kind: KindMissing, Release: w.s.release, Text: fmt.Sprintf("%s: missing statement %q", w.label(), w.s.Sid)})
			continue
		}
		g := &gs[pair[wi]]
		label := w.label()
		if g.s.Sid != w.s.Sid {
			label += " (" + statementLabel(pair[wi], g.s) + ")"
		}
		out = append(out, differences(label, w, g)...)
	}
	for gi := range gs {
		g := &gs[gi]
		label := statementLabel(gi, g.s)
		if !taken[gi] {
			out = append(out, Difference{Kind: KindExtra, Text: fmt.Sprintf("%s: extra statement: %s", label, g.summary())})
		}
		out = append(out, hazards(label, g)...)
	}
	return out
}

// norm is a statement in the form two equivalent statements share.
type norm struct {
	s                       *Statement
	principal, notPrincipal string
	action, notAction       []string // lower case, sorted, unique
	resource, notResource   []string
	conds                   []normCondition
}

type normCondition struct {
	op, key string // lower case
	values  []string
	c       *Condition
}

func normalize(s *Statement) norm {
	n := norm{s: s, principal: describePrincipal(s.Principal), notPrincipal: describePrincipal(s.NotPrincipal),
		action: lowerSet(s.Action), notAction: lowerSet(s.NotAction), resource: set(s.Resource), notResource: set(s.NotResource)}
	for i := range s.Conditions {
		c := &s.Conditions[i]
		nc := normCondition{op: strings.ToLower(c.Operator), key: strings.ToLower(c.Key), c: c}
		for _, v := range c.Values {
			nc.values = append(nc.values, normalValue(nc.op, nc.key, v))
		}
		nc.values = set(nc.values)
		n.conds = append(n.conds, nc)
	}
	slices.SortFunc(n.conds, func(a, b normCondition) int {
		if c := strings.Compare(a.op, b.op); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return n
}

// normalValue is a condition value as AWS compares it: attestation values
// without case (they are hex, compared with StringEqualsIgnoreCase), times
// as instants.
func normalValue(op, key, v string) string {
	switch {
	case isAttestationKey(key):
		return strings.ToLower(v)
	case strings.Contains(op, "date"):
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v
}

func isAttestationKey(key string) bool {
	return strings.HasPrefix(strings.ToLower(key), "kms:recipientattestation:")
}

func (n *norm) equal(o *norm) bool {
	if n.s.Effect != o.s.Effect || n.principal != o.principal || n.notPrincipal != o.notPrincipal ||
		!slices.Equal(n.action, o.action) || !slices.Equal(n.notAction, o.notAction) ||
		!slices.Equal(n.resource, o.resource) || !slices.Equal(n.notResource, o.notResource) || len(n.conds) != len(o.conds) {
		return false
	}
	for i := range n.conds {
		a, b := &n.conds[i], &o.conds[i]
		if a.op != b.op || a.key != b.key || !slices.Equal(a.values, b.values) {
			return false
		}
	}
	return true
}

// resemblance scores how likely got is a changed copy of want: the same
// Sid, the same PCR values; for the administrators' statement, the same
// principal and no attestation condition. Zero means unrelated.
func resemblance(want, got *norm) int {
	score := 0
	if got.s.Sid != "" && got.s.Sid == want.s.Sid {
		score += 1000
	}
	for _, wc := range want.conds {
		if !isAttestationKey(wc.key) {
			continue
		}
		for _, gc := range got.conds {
			if gc.key == wc.key && slices.Contains(gc.values, wc.values[0]) {
				score += 10
			}
		}
	}
	if want.s.admin && got.principal == want.principal && !got.attested() {
		score += 5
	}
	return score
}

// attested reports whether the statement pins any attestation value.
func (n *norm) attested() bool {
	for _, c := range n.conds {
		if isAttestationKey(c.key) && (c.op == "stringequals" || c.op == "stringequalsignorecase") {
			return true
		}
	}
	return false
}

func (n *norm) label() string {
	if n.s.admin {
		return "administrators"
	}
	return fmt.Sprintf("release %q", text.Truncate(n.s.release))
}

func statementLabel(i int, s *Statement) string {
	if s.Sid == "" {
		return fmt.Sprintf("statement %d", i+1)
	}
	return fmt.Sprintf("statement %d (%q)", i+1, text.Truncate(s.Sid))
}

func (n *norm) summary() string {
	var b strings.Builder
	b.WriteString(n.s.Effect)
	if n.s.Action != nil {
		b.WriteString(" " + strings.Join(n.s.Action, ", "))
	} else {
		b.WriteString(" all but " + strings.Join(n.s.NotAction, ", "))
	}
	if n.s.Principal != nil {
		b.WriteString(" to " + n.principal)
	} else {
		b.WriteString(" to all but " + n.notPrincipal)
	}
	var pins []string
	for _, c := range n.conds {
		if isAttestationKey(c.key) {
			pins = append(pins, fmt.Sprintf("%s %s", pcrName(c.c.Key), shortValues(c.values)))
		}
	}
	if len(pins) > 0 {
		b.WriteString(" when " + strings.Join(pins, ", "))
	} else if len(n.conds) > 0 {
		fmt.Fprintf(&b, " under %d conditions", len(n.conds))
	}
	return b.String()
}

// pcrName is kms:RecipientAttestation:PCR1's short name, PCR1.
func pcrName(key string) string {
	if len(key) > len(PCRKeyPrefix) && strings.EqualFold(key[:len(PCRKeyPrefix)], PCRKeyPrefix) {
		return "PCR" + key[len(PCRKeyPrefix):]
	}
	return key
}

func shortValues(vs []string) string {
	var out []string
	for _, v := range vs {
		if len(v) > 16 {
			v = v[:16] + "…"
		}
		out = append(out, v)
	}
	return strings.Join(out, "|")
}

// differences names what differs between a wanted statement and the live
// one paired with it.
func differences(label string, w, g *norm) []Difference {
	var out []Difference
	add := func(format string, a ...any) {
		out = append(out, Difference{Kind: KindChanged, Release: w.s.release, Text: label + ": " + fmt.Sprintf(format, a...)})
	}
	if w.s.Effect != g.s.Effect {
		add("Effect is %s, want %s", g.s.Effect, w.s.Effect)
	}
	if w.principal != g.principal || w.notPrincipal != g.notPrincipal {
		add("Principal is %s, want %s%s", principalOrNot(g), principalOrNot(w), uniqueIDHint(g.s))
	}
	for _, el := range []struct {
		name                    string
		want, got               []string
		wantWritten, gotWritten []string
	}{
		{"Action", w.action, g.action, w.s.Action, g.s.Action}, {"NotAction", w.notAction, g.notAction, w.s.NotAction, g.s.NotAction},
		{"Resource", w.resource, g.resource, w.s.Resource, g.s.Resource}, {"NotResource", w.notResource, g.notResource, w.s.NotResource, g.s.NotResource},
	} {
		if slices.Equal(el.want, el.got) {
			continue
		}
		switch {
		case el.want == nil:
			add("%s %s, which the manifest's statement does not have", el.name, strings.Join(el.gotWritten, ", "))
		case el.got == nil:
			add("no %s, want %s", el.name, strings.Join(el.wantWritten, ", "))
		default:
			if extra := written(minus(el.got, el.want), el.gotWritten); len(extra) > 0 {
				add("%s also has %s", el.name, strings.Join(extra, ", "))
			}
			if lacks := written(minus(el.want, el.got), el.wantWritten); len(lacks) > 0 {
				add("%s lacks %s", el.name, strings.Join(lacks, ", "))
			}
		}
	}
	reported := map[string]bool{} // keys whose operator differs
	for _, wc := range w.conds {
		var same *normCondition
		var others []string
		for i := range g.conds {
			gc := &g.conds[i]
			if gc.key != wc.key {
				continue
			}
			if gc.op == wc.op {
				same = gc
			} else if !otherCondition(wc, *gc, w) {
				others = append(others, gc.c.Operator)
			}
		}
		name := conditionName(wc)
		switch {
		case same != nil && !slices.Equal(same.values, wc.values):
			add("%s is %s, want %s", name, showValues(same.values), showValues(wc.values))
		case same != nil:
		case len(others) > 0:
			reported[wc.key] = true
			add("%s is compared with %s, want %s %s", name, strings.Join(others, ", "), wc.c.Operator, showValues(wc.values))
		default:
			add("%s is not in the policy, want %s %s", name, wc.c.Operator, showValues(wc.values))
		}
	}
	for _, gc := range g.conds {
		if reported[gc.key] || slices.ContainsFunc(w.conds, func(wc normCondition) bool { return wc.key == gc.key && (wc.op == gc.op || otherCondition(wc, gc, w)) }) {
			continue
		}
		add("extra condition %s %s %s", gc.c.Operator, gc.c.Key, showValues(gc.values))
	}
	return out
}

// otherCondition reports whether gc is another wanted condition on the
// same key (not_before and not_after are two operators on
// aws:CurrentTime), rather than a changed operator for wc.
func otherCondition(wc, gc normCondition, w *norm) bool {
	return gc.op != wc.op && slices.ContainsFunc(w.conds, func(o normCondition) bool { return o.key == gc.key && o.op == gc.op })
}

// conditionName names a wanted condition for the operator: the PCR, or
// the end of the release's window.
func conditionName(c normCondition) string {
	switch {
	case c.key == strings.ToLower(CurrentTime) && c.op == strings.ToLower(opNotBefore):
		return "not_before (" + opNotBefore + " " + CurrentTime + ")"
	case c.key == strings.ToLower(CurrentTime) && c.op == strings.ToLower(opNotAfter):
		return "not_after (" + opNotAfter + " " + CurrentTime + ")"
	}
	return c.c.Key
}

func showValues(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return "[" + strings.Join(vs, ", ") + "]"
}

// hazards names what makes a live statement dangerous whatever the
// manifest says.
func hazards(label string, g *norm) []Difference {
	if g.s.Effect != "Allow" {
		return nil
	}
	var out []Difference
	for _, c := range g.conds {
		if !isAttestationKey(c.key) {
			continue
		}
		if len(c.values) > 1 {
			out = append(out, Difference{Kind: KindMixing, Text: fmt.Sprintf("%s: %s lists %d values: a document could pair them with the PCRs of another release (one statement per release, one value each)", label, c.c.Key, len(c.values))})
		}
		if holdsWithoutRecipient(c.op) {
			out = append(out, Difference{Kind: KindNoRecipient, Text: fmt.Sprintf("%s: %s on %s holds for a request with no Recipient", label, c.c.Operator, c.c.Key)})
		}
	}
	if !g.attested() {
		var allowed []string
		for _, a := range SensitiveActions {
			if g.allows(a) {
				allowed = append(allowed, a)
			}
		}
		if len(allowed) > 0 {
			to := g.principal
			if g.s.Principal == nil {
				to = "all but " + g.notPrincipal
			}
			out = append(out, Difference{Kind: KindUnattested, Text: fmt.Sprintf("%s: allows %s to %s without an attestation condition", label, strings.Join(allowed, ", "), to)})
		}
	}
	return out
}

// holdsWithoutRecipient: AWS evaluates ...IfExists, negated operators,
// ForAllValues and Null as true when the key is absent (or can be made
// so).
func holdsWithoutRecipient(op string) bool {
	return strings.HasSuffix(op, "ifexists") || strings.Contains(op, "not") || strings.HasPrefix(op, "forallvalues:") || op == "null"
}

// allows reports whether the statement's Action (or NotAction) covers
// action, wildcards as IAM reads them.
func (n *norm) allows(action string) bool {
	action = strings.ToLower(action)
	if n.s.Action != nil {
		return slices.ContainsFunc(n.action, func(p string) bool { return Glob(p, action) })
	}
	return !slices.ContainsFunc(n.notAction, func(p string) bool { return Glob(p, action) })
}

// Glob matches s against an IAM pattern: * any run of characters, ? any
// one. Callers fold case where AWS does.
func Glob(pattern, s string) bool {
	// Iterative matching with one backtrack point: linear in practice and
	// never exponential.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func describePrincipal(p *Principal) string {
	if p == nil {
		return ""
	}
	if p.Any {
		return "*"
	}
	var parts []string
	for _, m := range []struct {
		name string
		v    []string
	}{{"AWS", p.AWS}, {"Service", p.Service}, {"Federated", p.Federated}, {"CanonicalUser", p.CanonicalUser}} {
		if m.v == nil {
			continue
		}
		vs := set(m.v)
		if m.name == "AWS" && len(vs) == 1 {
			parts = append(parts, vs[0])
		} else {
			parts = append(parts, m.name+":"+strings.Join(vs, ","))
		}
	}
	return strings.Join(parts, " ")
}

func principalOrNot(n *norm) string {
	if n.s.Principal == nil {
		return "all but " + n.notPrincipal
	}
	return n.principal
}

// uniqueIDHint explains AWS's normalisation of a deleted role: the policy
// then names the role's unique id (AROA…), which a new role of the same
// name does not have.
func uniqueIDHint(s *Statement) string {
	for _, p := range [2]*Principal{s.Principal, s.NotPrincipal} {
		if p == nil {
			continue
		}
		for _, v := range p.AWS {
			if strings.HasPrefix(v, "AROA") || strings.HasPrefix(v, "AIDA") {
				return " (" + text.Truncate(v) + " is a unique id: AWS writes it for a role or user that was deleted, and a new one of the same name is not it)"
			}
		}
	}
	return ""
}

func quoteOrAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return fmt.Sprintf("%q", text.Truncate(s))
}

func set(v []string) []string {
	if v == nil {
		return nil
	}
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}

func lowerSet(v []string) []string {
	if v == nil {
		return nil
	}
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = strings.ToLower(s)
	}
	return set(out)
}

// written maps normalised values back to how the document wrote them.
func written(normal, as []string) []string {
	var out []string
	for _, n := range normal {
		i := slices.IndexFunc(as, func(a string) bool { return strings.EqualFold(a, n) })
		if i >= 0 && !slices.Contains(out, as[i]) {
			out = append(out, as[i])
		}
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

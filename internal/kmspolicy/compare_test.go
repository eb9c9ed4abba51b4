package kmspolicy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

// live is the rendered policy of v1 and v2 changed by edit, written and
// read back as `aws kms get-key-policy` would give it.
func live(t *testing.T, edit func(d *kmspolicy.Document)) *kmspolicy.Document {
	t.Helper()
	d := render(t, releases(t, "v1", "v2"))
	edit(d)
	got, err := kmspolicy.Parse(marshal(t, d))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// condition returns statement s's condition on key.
func condition(s *kmspolicy.Statement, key string) *kmspolicy.Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Key == key {
			return &s.Conditions[i]
		}
	}
	return nil
}

const (
	pcr0 = "kms:RecipientAttestation:PCR0"
	pcr1 = "kms:RecipientAttestation:PCR1"
	pcr2 = "kms:RecipientAttestation:PCR2"
)

func TestCompareNamesEachDrift(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(d *kmspolicy.Document)
		want []string
		// kinds are the kinds of the differences, in order.
		kinds []kmspolicy.Kind
	}{
		{name: "equivalent_reordered_and_renamed", edit: func(d *kmspolicy.Document) {
			slices.Reverse(d.Statements)
			d.Statements[0].Sid = "Whatever"
			d.Statements[1].Action = []string{"kms:generatedatakey", "KMS:Decrypt", "kms:Decrypt"}
		}},
		{name: "bad_pcr1_of_another_build", edit: func(d *kmspolicy.Document) {
			condition(&d.Statements[2], pcr1).Values = []string{pcr(0x99)}
		}, want: []string{`release "v2": kms:RecipientAttestation:PCR1 is ` + pcr(0x99) + `, want ` + pcr(0xb1)},
			kinds: []kmspolicy.Kind{kmspolicy.KindChanged}},
		{name: "bad_missing_release", edit: func(d *kmspolicy.Document) {
			d.Statements = d.Statements[:2]
		}, want: []string{`release "v2": missing statement "Release v2"`}, kinds: []kmspolicy.Kind{kmspolicy.KindMissing}},
		{name: "bad_retired_release_still_allowed", edit: func(d *kmspolicy.Document) {
			old := render(t, releases(t, "v3"))
			d.Statements = append(d.Statements, old.Statements[1])
		}, want: []string{`statement 4 ("Release v3"): extra statement: Allow kms:Decrypt, kms:GenerateDataKey to ` + role + ` when PCR8 c8c8c8c8c8c8c8c8…`},
			kinds: []kmspolicy.Kind{kmspolicy.KindExtra}},
		{name: "bad_one_statement_listing_both_releases", edit: func(d *kmspolicy.Document) {
			for _, key := range []string{pcr0, pcr1, pcr2} {
				c := condition(&d.Statements[1], key)
				c.Values = append(c.Values, condition(&d.Statements[2], key).Values...)
			}
			d.Statements = d.Statements[:2]
		}, want: []string{
			`release "v1": kms:RecipientAttestation:PCR0 is [` + pcr(0xa0) + `, ` + pcr(0xb0) + `], want ` + pcr(0xa0),
			`release "v1": kms:RecipientAttestation:PCR1 is [` + pcr(0xa1) + `, ` + pcr(0xb1) + `], want ` + pcr(0xa1),
			`release "v1": kms:RecipientAttestation:PCR2 is [` + pcr(0xa2) + `, ` + pcr(0xb2) + `], want ` + pcr(0xa2),
			`release "v2": missing statement "Release v2"`,
			`statement 2 ("Release v1"): kms:RecipientAttestation:PCR0 lists 2 values: a document could pair them with the PCRs of another release (one statement per release, one value each)`,
			`statement 2 ("Release v1"): kms:RecipientAttestation:PCR1 lists 2 values: a document could pair them with the PCRs of another release (one statement per release, one value each)`,
			`statement 2 ("Release v1"): kms:RecipientAttestation:PCR2 lists 2 values: a document could pair them with the PCRs of another release (one statement per release, one value each)`,
		}, kinds: []kmspolicy.Kind{kmspolicy.KindChanged, kmspolicy.KindChanged, kmspolicy.KindChanged, kmspolicy.KindMissing, kmspolicy.KindMixing, kmspolicy.KindMixing, kmspolicy.KindMixing}},
		{name: "bad_administrators_may_decrypt", edit: func(d *kmspolicy.Document) {
			d.Statements[0].Action = append(d.Statements[0].Action, "kms:Decrypt")
		}, want: []string{
			`administrators: Action also has kms:Decrypt`,
			`statement 1 ("KeyAdministration"): allows kms:Decrypt to arn:aws:iam::111122223333:root without an attestation condition`,
		}, kinds: []kmspolicy.Kind{kmspolicy.KindChanged, kmspolicy.KindUnattested}},
		{name: "bad_administrators_may_do_everything", edit: func(d *kmspolicy.Document) {
			d.Statements[0].Action = []string{"kms:*"}
		}, want: []string{
			`administrators: Action also has kms:*`,
			`administrators: Action lacks ` + strings.Join(kmspolicy.AdminActions, ", "),
			`statement 1 ("KeyAdministration"): allows ` + strings.Join(kmspolicy.SensitiveActions, ", ") + ` to arn:aws:iam::111122223333:root without an attestation condition`,
		}},
		{name: "bad_unattested_grant_added", edit: func(d *kmspolicy.Document) {
			d.Statements = append(d.Statements, kmspolicy.Statement{Sid: "Debug", Effect: "Allow", Principal: &kmspolicy.Principal{AWS: []string{role}},
				NotAction: []string{"kms:Describe*"}, Resource: []string{"*"}})
		}, want: []string{
			`statement 4 ("Debug"): extra statement: Allow all but kms:Describe* to ` + role,
			`statement 4 ("Debug"): allows ` + strings.Join(kmspolicy.SensitiveActions, ", ") + ` to ` + role + ` without an attestation condition`,
		}},
		{name: "bad_pcr_pins_that_hold_without_a_recipient", edit: func(d *kmspolicy.Document) {
			for i := range d.Statements[1].Conditions {
				if c := &d.Statements[1].Conditions[i]; c.Operator == "StringEqualsIgnoreCase" {
					c.Operator = "StringEqualsIgnoreCaseIfExists"
				}
			}
		}, want: []string{
			`release "v1": kms:RecipientAttestation:PCR0 is compared with StringEqualsIgnoreCaseIfExists, want StringEqualsIgnoreCase ` + pcr(0xa0),
			`release "v1": kms:RecipientAttestation:PCR1 is compared with StringEqualsIgnoreCaseIfExists, want StringEqualsIgnoreCase ` + pcr(0xa1),
			`release "v1": kms:RecipientAttestation:PCR2 is compared with StringEqualsIgnoreCaseIfExists, want StringEqualsIgnoreCase ` + pcr(0xa2),
			`statement 2 ("Release v1"): StringEqualsIgnoreCaseIfExists on kms:RecipientAttestation:PCR0 holds for a request with no Recipient`,
			`statement 2 ("Release v1"): StringEqualsIgnoreCaseIfExists on kms:RecipientAttestation:PCR1 holds for a request with no Recipient`,
			`statement 2 ("Release v1"): StringEqualsIgnoreCaseIfExists on kms:RecipientAttestation:PCR2 holds for a request with no Recipient`,
			`statement 2 ("Release v1"): allows kms:Decrypt, kms:GenerateDataKey to ` + role + ` without an attestation condition`,
		}},
		{name: "bad_pcr2_dropped", edit: func(d *kmspolicy.Document) {
			s := &d.Statements[1]
			s.Conditions = slices.DeleteFunc(s.Conditions, func(c kmspolicy.Condition) bool { return c.Key == pcr2 })
		}, want: []string{`release "v1": kms:RecipientAttestation:PCR2 is not in the policy, want StringEqualsIgnoreCase ` + pcr(0xa2)}},
		{name: "bad_other_signer_id", edit: func(d *kmspolicy.Document) {
			condition(&d.Statements[2], kmspolicy.ContextKey).Values = []string{"signer-b"}
		}, want: []string{`release "v2": kms:EncryptionContext:nitro-signer:signer_id is signer-b, want signer-a`}},
		{name: "bad_no_signer_id", edit: func(d *kmspolicy.Document) {
			s := &d.Statements[2]
			s.Conditions = slices.DeleteFunc(s.Conditions, func(c kmspolicy.Condition) bool { return c.Key == kmspolicy.ContextKey })
		}, want: []string{`release "v2": kms:EncryptionContext:nitro-signer:signer_id is not in the policy, want StringEquals signer-a`}},
		{name: "bad_not_after_extended", edit: func(d *kmspolicy.Document) {
			for i := range d.Statements[1].Conditions {
				if c := &d.Statements[1].Conditions[i]; c.Operator == "DateLessThan" {
					c.Values = []string{"2027-01-01T00:00:00Z"}
				}
			}
		}, want: []string{`release "v1": not_after (DateLessThan aws:CurrentTime) is 2027-01-01T00:00:00Z, want 2026-07-01T00:00:00Z`}},
		{name: "bad_not_after_dropped", edit: func(d *kmspolicy.Document) {
			s := &d.Statements[1]
			s.Conditions = slices.DeleteFunc(s.Conditions, func(c kmspolicy.Condition) bool { return c.Operator == "DateLessThan" })
		}, want: []string{`release "v1": not_after (DateLessThan aws:CurrentTime) is not in the policy, want DateLessThan 2026-07-01T00:00:00Z`}},
		{name: "bad_extra_condition", edit: func(d *kmspolicy.Document) {
			d.Statements[2].Conditions = append(d.Statements[2].Conditions, kmspolicy.Condition{Operator: "StringLike", Key: "kms:RecipientAttestation:PCR4", Values: []string{"*"}})
		}, want: []string{`release "v2": extra condition StringLike kms:RecipientAttestation:PCR4 *`}},
		{name: "bad_another_role", edit: func(d *kmspolicy.Document) {
			d.Statements[1].Principal.AWS = []string{"arn:aws:iam::444455556666:role/parent"}
		}, want: []string{`release "v1": Principal is arn:aws:iam::444455556666:role/parent, want ` + role}},
		{name: "bad_role_deleted", edit: func(d *kmspolicy.Document) {
			d.Statements[1].Principal.AWS = []string{"AROAEXAMPLEUNIQUEID12"}
		}, want: []string{`release "v1": Principal is AROAEXAMPLEUNIQUEID12, want ` + role + ` (AROAEXAMPLEUNIQUEID12 is a unique id: AWS writes it for a role or user that was deleted, and a new one of the same name is not it)`}},
		{name: "bad_anyone", edit: func(d *kmspolicy.Document) {
			d.Statements[1].Principal = &kmspolicy.Principal{Any: true}
		}, want: []string{`release "v1": Principal is *, want ` + role}},
		{name: "bad_encrypt_added", edit: func(d *kmspolicy.Document) {
			d.Statements[2].Action = append(d.Statements[2].Action, "kms:Encrypt")
		}, want: []string{`release "v2": Action also has kms:Encrypt`}},
		{name: "bad_deny", edit: func(d *kmspolicy.Document) {
			d.Statements[2].Effect = "Deny"
		}, want: []string{`release "v2": Effect is Deny, want Allow`}},
		{name: "bad_resource", edit: func(d *kmspolicy.Document) {
			d.Statements[2].Resource = []string{"arn:aws:kms:us-east-1:111122223333:key/other"}
		}, want: []string{`release "v2": Resource also has arn:aws:kms:us-east-1:111122223333:key/other`, `release "v2": Resource lacks *`}},
		{name: "bad_version", edit: func(d *kmspolicy.Document) {
			d.Version = "2008-10-17"
		}, want: []string{`Version is "2008-10-17", want "2012-10-17"`}, kinds: []kmspolicy.Kind{kmspolicy.KindDocument}},
		{name: "bad_sid_and_pcr_changed", edit: func(d *kmspolicy.Document) {
			d.Statements[1].Sid = "Old"
			condition(&d.Statements[1], pcr0).Values = []string{pcr(0x77)}
		}, want: []string{`release "v1" (statement 2 ("Old")): kms:RecipientAttestation:PCR0 is ` + pcr(0x77) + `, want ` + pcr(0xa0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diffs := kmspolicy.Compare(render(t, releases(t, "v1", "v2")), live(t, tc.edit))
			var got []string
			var kinds []kmspolicy.Kind
			for _, d := range diffs {
				got = append(got, d.String())
				kinds = append(kinds, d.Kind)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.kinds != nil && !slices.Equal(kinds, tc.kinds) {
				t.Fatalf("kinds %v, want %v", kinds, tc.kinds)
			}
			for _, d := range diffs {
				if d.Kind == kmspolicy.KindChanged && d.Release == "" && !strings.HasPrefix(d.Text, "administrators") {
					t.Errorf("a changed release statement names no release: %q", d.Text)
				}
			}
		})
	}
}

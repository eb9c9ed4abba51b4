package kmspolicy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

// awsForm is v1's policy as AWS may print it: compact, keys in another
// order, a list of one where the rendered policy has a string and a
// string where it has a list, the statement list of one object written as
// the object itself is not used here (two statements), hex in upper case,
// a time with an offset.
func awsForm() string {
	return fmt.Sprintf(`{"Statement":[{"Resource":["*"],"Action":["kms:CancelKeyDeletion","kms:CreateAlias","kms:DeleteAlias","kms:DescribeKey","kms:DisableKey","kms:DisableKeyRotation","kms:EnableKey","kms:EnableKeyRotation","kms:GetKeyPolicy","kms:GetKeyRotationStatus","kms:ListGrants","kms:ListKeyPolicies","kms:ListKeyRotations","kms:ListResourceTags","kms:PutKeyPolicy","kms:RevokeGrant","kms:RotateKeyOnDemand","kms:ScheduleKeyDeletion","kms:TagResource","kms:UntagResource","kms:UpdateAlias","kms:UpdateKeyDescription"],"Principal":{"AWS":["arn:aws:iam::111122223333:root"]},"Effect":"Allow","Sid":"KeyAdministration"},`+
		`{"Condition":{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:PCR2":["%s"],"kms:recipientattestation:pcr1":"%s","kms:RecipientAttestation:PCR0":"%s"},"StringEquals":{"kms:EncryptionContext:nitro-signer:signer_id":["signer-a"]},"DateLessThan":{"aws:CurrentTime":"2026-07-01T02:00:00+02:00"},"DateGreaterThanEquals":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}},`+
		`"Sid":"Allow the v1 enclave","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/signer-role"},"Action":["kms:GenerateDataKey","kms:decrypt"],"Resource":"*"}],"Version":"2012-10-17","Id":"key-consolepolicy-3"}`+"\n",
		strings.ToUpper(pcr(0xa2)), pcr(0xa1), pcr(0xa0))
}

func TestParseAcceptsAWSNormalisations(t *testing.T) {
	got, err := kmspolicy.Parse([]byte(awsForm()))
	if err != nil {
		t.Fatal(err)
	}
	if diffs := kmspolicy.Compare(render(t, releases(t, "v1")), got); diffs != nil {
		t.Fatalf("AWS's form of the policy differs: %v", diffs)
	}
	// A single statement may be the object itself.
	one := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"kms:Describe*","NotResource":["arn:aws:kms:*"],"Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"kms:GrantCount":[3, 4.5]}}}}`
	d, err := kmspolicy.Parse([]byte(one))
	if err != nil {
		t.Fatal(err)
	}
	s := d.Statements[0]
	if !s.Principal.Any || s.NotAction[0] != "kms:Describe*" || s.Conditions[0].Values[0] != "false" || strings.Join(s.Conditions[1].Values, " ") != "3 4.5" {
		t.Fatalf("parsed %+v", s)
	}
}

func TestParseRefuses(t *testing.T) {
	valid := string(marshal(t, render(t, releases(t, "v1"))))
	stmt := func(body string) string { return `{"Version":"2012-10-17","Statement":[` + body + `]}` }
	ok := `"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/r"},"Action":"kms:Decrypt","Resource":"*"`
	deep := strings.Repeat("[", 9) + strings.Repeat("]", 9)
	for _, tc := range []struct{ name, in string }{
		{"bad_not_json", "Version: 2012-10-17"},
		{"bad_empty", ""},
		{"bad_a_list", "[" + valid + "]"},
		{"bad_trailing_data", valid + "{}"},
		{"bad_truncated", valid[:len(valid)/2]},
		{"bad_too_large", stmt(`{` + ok + `,"Sid":"` + strings.Repeat("a", kmspolicy.MaxSize) + `"}`)},
		{"bad_not_utf8", stmt(`{` + ok + `,"Sid":"` + "\xff" + `"}`)},
		{"bad_character_aws_refuses", stmt(`{` + ok + `,"Sid":"Ω"}`)},
		{"bad_escaped_character_aws_refuses", stmt(`{` + ok + `,"Sid":"\u0007"}`)},
		{"bad_escaped_character_in_a_key", `{"Version":"2012-10-17","Statement":[{` + ok + `,"Condition":{"StringEquals":{"a\u2028":"x"}}}]}`},
		{"bad_duplicate_version", `{"Version":"2012-10-17","Version":"2008-10-17","Statement":[{` + ok + `}]}`},
		{"bad_duplicate_statement", `{"Version":"2012-10-17","Statement":[{` + ok + `}],"Statement":[{` + ok + `}]}`},
		{"bad_duplicate_effect", stmt(`{` + ok + `,"Effect":"Deny"}`)},
		{"bad_duplicate_escaped_key", stmt(`{` + ok + `,"\u0045ffect":"Deny"}`)},
		{"bad_duplicate_condition_key", stmt(`{` + ok + `,"Condition":{"StringEquals":{"kms:RecipientAttestation:PCR0":"a","kms:RecipientAttestation:PCR0":"b"}}}`)},
		{"bad_condition_key_twice_in_two_cases", stmt(`{` + ok + `,"Condition":{"StringEquals":{"kms:RecipientAttestation:PCR0":"a","KMS:RECIPIENTATTESTATION:PCR0":"b"}}}`)},
		{"bad_operator_twice_in_two_cases", stmt(`{` + ok + `,"Condition":{"StringEquals":{"a":"x"},"stringequals":{"b":"y"}}}`)},
		{"bad_unknown_document_element", `{"Version":"2012-10-17","Statements":[{` + ok + `}]}`},
		{"bad_element_in_another_case", `{"version":"2012-10-17","Statement":[{` + ok + `}]}`},
		{"bad_unknown_statement_element", stmt(`{` + ok + `,"Comment":"x"}`)},
		{"bad_no_statement", `{"Version":"2012-10-17"}`},
		{"bad_empty_statement_list", `{"Version":"2012-10-17","Statement":[]}`},
		{"bad_statement_a_string", `{"Version":"2012-10-17","Statement":["x"]}`},
		{"bad_version_a_number", `{"Version":2012,"Statement":[{` + ok + `}]}`},
		{"bad_effect_lower_case", stmt(`{"Effect":"allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}`)},
		{"bad_no_effect", stmt(`{"Principal":"*","Action":"kms:Decrypt","Resource":"*"}`)},
		{"bad_no_principal", stmt(`{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}`)},
		{"bad_principal_and_not_principal", stmt(`{` + ok + `,"NotPrincipal":"*"}`)},
		{"bad_action_and_not_action", stmt(`{` + ok + `,"NotAction":"kms:Encrypt"}`)},
		{"bad_no_action", stmt(`{"Effect":"Allow","Principal":"*","Resource":"*"}`)},
		{"bad_no_resource", stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt"}`)},
		{"bad_principal_string_not_star", stmt(`{"Effect":"Allow","Principal":"arn:aws:iam::111122223333:root","Action":"kms:Decrypt","Resource":"*"}`)},
		{"bad_principal_unknown_type", stmt(`{"Effect":"Allow","Principal":{"Aws":"x"},"Action":"kms:Decrypt","Resource":"*"}`)},
		{"bad_principal_empty_object", stmt(`{"Effect":"Allow","Principal":{},"Action":"kms:Decrypt","Resource":"*"}`)},
		{"bad_principal_number", stmt(`{"Effect":"Allow","Principal":{"AWS":1},"Action":"kms:Decrypt","Resource":"*"}`)},
		{"bad_empty_action_list", stmt(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}`)},
		{"bad_action_null", stmt(`{"Effect":"Allow","Principal":"*","Action":null,"Resource":"*"}`)},
		{"bad_action_list_of_lists", stmt(`{"Effect":"Allow","Principal":"*","Action":[["kms:Decrypt"]],"Resource":"*"}`)},
		{"bad_condition_empty", stmt(`{` + ok + `,"Condition":{}}`)},
		{"bad_condition_operator_empty", stmt(`{` + ok + `,"Condition":{"StringEquals":{}}}`)},
		{"bad_condition_a_list", stmt(`{` + ok + `,"Condition":[]}`)},
		{"bad_condition_value_object", stmt(`{` + ok + `,"Condition":{"StringEquals":{"k":{"v":1}}}}`)},
		{"bad_condition_value_null", stmt(`{` + ok + `,"Condition":{"StringEquals":{"k":null}}}`)},
		{"bad_condition_value_empty_list", stmt(`{` + ok + `,"Condition":{"StringEquals":{"k":[]}}}`)},
		{"bad_nested_too_deep", stmt(`{` + ok + `,"Condition":{"StringEquals":{"k":` + deep + `}}}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kmspolicy.Parse([]byte(tc.in))
			if !errors.Is(err, kmspolicy.ErrPolicy) {
				t.Fatalf("Parse: %v, want ErrPolicy", err)
			}
			if strings.Contains(err.Error(), "\n") || len(err.Error()) > 300 {
				t.Fatalf("error of several lines or too long: %q", err)
			}
		})
	}
}

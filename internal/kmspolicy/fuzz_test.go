package kmspolicy_test

import (
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

// FuzzParse: no input panics Parse or Compare; what Parse accepts is
// written back by Marshal (unless it grows past what KMS stores) to a
// document Parse reads as the same policy. The seeds are whole policies
// of a few kilobytes: run it with -fuzzminimizetime 2s, or the default
// minute of minimizing each new input stalls the run.
func FuzzParse(f *testing.F) {
	f.Add(marshal(f, render(f, releases(f))))
	f.Add([]byte(awsForm()))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"kms:Describe*","NotResource":["arn:aws:kms:*"],"Condition":{"Bool":{"aws:SecureTransport":false}}}}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":["a","b"],"Service":"kms.amazonaws.com"},"Action":"*","Resource":"*","Condition":{"ForAllValues:StringEqualsIfExists":{"kms:RecipientAttestation:PCR0":["a","b"]}}}]}`))
	want := render(f, releases(f, "v1", "v2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := kmspolicy.Parse(b)
		if err != nil {
			if !errors.Is(err, kmspolicy.ErrPolicy) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		kmspolicy.Compare(want, d)
		kmspolicy.Compare(d, d)
		out, err := d.Marshal()
		if err != nil {
			return // indented, it may outgrow MaxSize
		}
		again, err := kmspolicy.Parse(out)
		if err != nil {
			t.Fatalf("Marshal wrote what Parse refuses: %v\n%s", err, out)
		}
		if d.Version != again.Version || d.ID != again.ID {
			t.Fatalf("version or id changed")
		}
		if diffs := kmspolicy.Compare(d, again); diffs != nil {
			var changed []kmspolicy.Difference
			for _, x := range diffs {
				if x.Kind != kmspolicy.KindMixing && x.Kind != kmspolicy.KindNoRecipient && x.Kind != kmspolicy.KindUnattested {
					changed = append(changed, x)
				}
			}
			if changed != nil {
				t.Fatalf("round trip changed the policy: %v", changed)
			}
		}
	})
}

package kmsseal_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
)

// release is the release of what sim measures, with PCR1 replaced when
// pcr1 is given (a build of the same application on another kernel).
func release(t *testing.T, version string, sim simNSM, pcr1 []byte) attestation.Release {
	t.Helper()
	r := attestation.Release{Version: version, PCRs: map[int][]byte{}, EIFSHA256: bytes.Repeat([]byte{1}, 32),
		NotBefore: time.Now().Add(-time.Hour), Match: []int{0, 1, 2}}
	for i := range 3 {
		p, err := sim.DescribePCR(i)
		if err != nil {
			t.Fatal(err)
		}
		r.PCRs[i] = p.Value
	}
	if pcr1 != nil {
		r.PCRs[1] = pcr1
	}
	return r
}

// The key policy `signerctl kms policy` prints (kmspolicy.Render), as the
// local KMS's policy: an enclave of either release of a rollout gets a
// data key and unseals what the other sealed; an enclave whose PCR0 and
// PCR2 are one release's and PCR1 another's is refused, naming PCR1.
func TestRenderedKeyPolicyThroughTheSealer(t *testing.T) {
	var sims = map[string]simNSM{}
	f := newFixtureWith(t, func(f *fixture, p *kmstest.Policy) {
		for _, image := range []string{"image-a", "image-b", "image-c"} {
			sims[image] = simulator(t, f.dir, image, false)
		}
		rs := &attestation.Releases{Releases: []attestation.Release{
			release(t, "v1.0.0", sims["image-a"], nil),
			release(t, "v1.1.0", sims["image-b"], nil),
			// image-c's application on a kernel no simulator has: an
			// image-c document pairs its PCR0 and PCR2 with the PCR1 of
			// the other releases.
			release(t, "v1.2.0", sims["image-c"], bytes.Repeat([]byte{0x42}, 48)),
		}}
		d, err := kmspolicy.Render(rs, kmspolicy.Options{Role: "arn:aws:iam::111122223333:role/signer-role", SignerID: "signer-a"})
		if err != nil {
			t.Fatal(err)
		}
		if p.KeyPolicy, err = d.Marshal(); err != nil {
			t.Fatal(err)
		}
		p.PCRs = nil
	})
	ctx := context.Background()
	a := f.sealer(t, sims["image-a"], f.kms.URL)
	blob, err := seal.Seal(ctx, a, "signer-a", secrets(), time.Now())
	if err != nil {
		t.Fatalf("release v1.0.0 sealing: %v", err)
	}
	out, _, err := seal.Open(ctx, f.sealer(t, sims["image-b"], f.kms.URL), "signer-a", blob)
	if err != nil || !out.Epochs[1].Equal(secrets().Epochs[1]) {
		t.Fatalf("release v1.1.0 unsealing v1.0.0's keyring: %v", err)
	}
	c := f.sealer(t, sims["image-c"], f.kms.URL)
	_, _, err = seal.Open(ctx, c, "signer-a", blob)
	if !errors.Is(err, seal.ErrUnwrap) || !strings.Contains(err.Error(), "AccessDeniedException") ||
		!strings.Contains(err.Error(), `("Release v1 2 0"): kms:RecipientAttestation:PCR1 does not hold`) {
		t.Fatalf("an image with another release's PCR1: %v", err)
	}
	if _, err := seal.Seal(ctx, c, "signer-a", secrets(), time.Now()); err == nil {
		t.Fatal("an image with another release's PCR1 obtained a data key")
	}
	// The wrapped key is bound to the signer_id by the policy as well as
	// by the encryption context.
	if _, err := seal.Seal(ctx, a, "signer-b", secrets(), time.Now()); err == nil || !strings.Contains(err.Error(), "signer_id") {
		t.Fatalf("another signer_id: %v", err)
	}
	// A debug enclave of a release has PCRs of zeros and matches none.
	if _, _, err := seal.Open(ctx, f.sealer(t, simulator(t, f.dir, "image-a", true), f.kms.URL), "signer-a", blob); !errors.Is(err, seal.ErrUnwrap) {
		t.Fatalf("a debug enclave: %v", err)
	}
	// The parent's own credentials (its role, no Recipient) get nothing.
	if _, err := f.kms.Owner(f.policy.Operator()).Unwrap(ctx, "signer-a", mustHeader(t, blob).WrappedKey); err == nil {
		t.Fatal("the role's credentials without a Recipient decrypted the data key")
	}
	if f.kms.Calls("GenerateDataKey") != 1 || f.kms.Calls("Decrypt") != 1 {
		t.Fatalf("calls: %d GenerateDataKey, %d Decrypt", f.kms.Calls("GenerateDataKey"), f.kms.Calls("Decrypt"))
	}
}

func mustHeader(t *testing.T, blob []byte) *seal.Header {
	t.Helper()
	h, err := seal.ParseHeader(blob)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

package attestation_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
)

// TestAllowedMeasurements is the verifier's matrix for several allowed
// releases: a document matches one whole set inside its window, or none.
func TestAllowedMeasurements(t *testing.T) {
	a := testPKI(t)
	is := newIssuer(t, a, issuer.Options{})
	at := t0.Add(time.Second)
	doc := func(pcrs map[int][]byte) []byte {
		t.Helper()
		all := simPCRs()
		for i, v := range pcrs {
			all[i] = v
		}
		d, err := is.Issue(issuer.Payload{Timestamp: t0, PCRs: all})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	imageA := map[int][]byte{0: pcrValue(0xa0), 1: pcrValue(0xa1), 2: pcrValue(0xa2)}
	imageB := map[int][]byte{0: pcrValue(0xb0), 1: pcrValue(0xb1), 2: pcrValue(0xb2)}
	signedB := map[int][]byte{0: pcrValue(0xb0), 1: pcrValue(0xb1), 2: pcrValue(0xb2), 8: pcrValue(0xc8)}
	relA := attestation.Measurement{Name: "A", PCRs: imageA, NotBefore: t0.Add(-time.Hour)}
	relB := attestation.Measurement{Name: "B", PCRs: imageB, NotBefore: t0.Add(-time.Hour)}
	cert := attestation.Measurement{Name: "signed", PCRs: map[int][]byte{8: pcrValue(0xc8)}}
	certAndPCR0 := attestation.Measurement{Name: "signed-b", PCRs: map[int][]byte{0: pcrValue(0xb0), 8: pcrValue(0xc8)}}
	mixed := map[int][]byte{0: pcrValue(0xa0), 1: pcrValue(0xb1), 2: pcrValue(0xa2)}
	expired := relA
	expired.NotAfter = t0
	later := relB
	later.NotBefore = at.Add(time.Minute)

	for _, tc := range []struct {
		name    string
		doc     []byte
		allowed []attestation.Measurement
		want    error
		matched string
	}{
		{"valid_first_release", doc(imageA), []attestation.Measurement{relA, relB}, nil, "A"},
		{"valid_second_release", doc(imageB), []attestation.Measurement{relA, relB}, nil, "B"},
		{"valid_signing_certificate_with_pcr0_free", doc(signedB), []attestation.Measurement{relA, cert}, nil, "signed"},
		{"valid_signing_certificate_and_pcr0", doc(signedB), []attestation.Measurement{certAndPCR0}, nil, "signed-b"},
		{"valid_expired_beside_a_live_match", doc(imageA), []attestation.Measurement{expired, relA}, nil, "A"},
		{"bad_no_set_matches", doc(map[int][]byte{0: pcrValue(0xd0), 1: pcrValue(0xd1), 2: pcrValue(0xd2)}), []attestation.Measurement{relA, relB}, attestation.ErrPCRMismatch, ""},
		{"bad_pcr0_of_one_set_pcr1_of_another", doc(mixed), []attestation.Measurement{relA, relB}, attestation.ErrPCRMismatch, ""},
		{"bad_set_matching_but_expired", doc(imageA), []attestation.Measurement{expired, relB}, attestation.ErrReleaseExpired, ""},
		{"bad_set_matching_but_not_yet_valid", doc(imageB), []attestation.Measurement{relA, later}, attestation.ErrReleaseNotYetValid, ""},
		{"bad_pcr8_pinned_other_signing_certificate", doc(map[int][]byte{0: pcrValue(0xb0), 1: pcrValue(0xb1), 2: pcrValue(0xb2), 8: pcrValue(0xc9)}),
			[]attestation.Measurement{cert}, attestation.ErrPCRMismatch, ""},
		{"bad_pcr8_pinned_unsigned_image", doc(imageB), []attestation.Measurement{cert}, attestation.ErrPCRMismatch, ""},
		{"bad_signing_certificate_but_other_pcr0", doc(map[int][]byte{0: pcrValue(0xa0), 8: pcrValue(0xc8)}), []attestation.Measurement{certAndPCR0}, attestation.ErrPCRMismatch, ""},
		{"bad_policy_set_pins_only_pcr0", doc(imageA), []attestation.Measurement{{Name: "x", PCRs: map[int][]byte{0: pcrValue(0xa0)}}}, attestation.ErrPolicy, ""},
		{"bad_policy_set_pins_pcr9", doc(imageA), []attestation.Measurement{{Name: "x", PCRs: map[int][]byte{8: pcrValue(1), 9: pcrValue(1)}}}, attestation.ErrPolicy, ""},
		{"bad_policy_set_pin_length", doc(imageA), []attestation.Measurement{{Name: "x", PCRs: map[int][]byte{8: {1}}}}, attestation.ErrPolicy, ""},
		{"bad_policy_pcr8_zeros_accepts_every_unsigned_image", doc(imageB), []attestation.Measurement{{Name: "x", PCRs: map[int][]byte{8: make([]byte, 48)}}}, attestation.ErrPolicy, ""},
		{"bad_policy_pcrs_zeros_accept_every_debug_enclave", doc(imageB), []attestation.Measurement{{Name: "x", PCRs: map[int][]byte{0: make([]byte, 48), 1: make([]byte, 48), 2: make([]byte, 48)}}}, attestation.ErrPolicy, ""},
		{"bad_policy_window_inverted", doc(imageA), []attestation.Measurement{{Name: "x", PCRs: imageA, NotBefore: t0, NotAfter: t0}}, attestation.ErrPolicy, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := attestation.Verify(tc.doc, attestation.Policy{Roots: []*x509.Certificate{a.Root}, At: at, Allowed: tc.allowed})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			if err == nil && d.Measurement != tc.matched {
				t.Fatalf("matched %q, want %q", d.Measurement, tc.matched)
			}
			if err != nil && tc.want != attestation.ErrPolicy && attestation.Rule(err) == "" {
				t.Fatalf("%v has no rule name", err)
			}
		})
	}
}

package kmspolicy_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

// TestRenderRefusesReleasesEveryImageMatches: a release giving PCR8 as
// zeros (every unsigned image reports it) or PCR0–2 as zeros (every
// debug-mode enclave) would let any such enclave of the parent's decrypt;
// Render refuses it, as ParseReleases does.
func TestRenderRefusesReleasesEveryImageMatches(t *testing.T) {
	pcr := func(b byte) []byte { return bytes.Repeat([]byte{b}, 48) }
	for name, r := range map[string]attestation.Release{
		"bad_pcr8_zeros": {Version: "v1", PCRs: map[int][]byte{0: pcr(1), 1: pcr(2), 2: pcr(3), 8: make([]byte, 48)}, Match: []int{8}},
		"bad_pcrs_zeros": {Version: "v1", PCRs: map[int][]byte{0: make([]byte, 48), 1: make([]byte, 48), 2: make([]byte, 48)}, Match: []int{0, 1, 2}},
	} {
		t.Run(name, func(t *testing.T) {
			r.EIFSHA256, r.NotBefore = pcr(9)[:32], time.Now()
			_, err := kmspolicy.Render(&attestation.Releases{Releases: []attestation.Release{r}},
				kmspolicy.Options{Role: "arn:aws:iam::111122223333:role/signer-role", SignerID: "signer-a"})
			if !errors.Is(err, kmspolicy.ErrOptions) {
				t.Fatalf("rendered a policy for %s: %v", name, err)
			}
		})
	}
}

package kmsseal_test

import (
	"context"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

// The KMS sealer holds the parent's credentials (cached by the KMS client)
// once it has called KMS: nothing of them is printed or logged, and
// neither is a keyring on its way to being sealed.
func TestSealerNeverReachesTheLog(t *testing.T) {
	f := newFixture(t)
	s := f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL)
	k := secrets()
	if _, err := seal.Seal(context.Background(), s, "signer-a", k, time.Now()); err != nil {
		t.Fatal(err)
	}
	logtest.NeverLogged(t, s, []byte(f.policy.SecretAccessKey), []byte(f.policy.SessionToken))
	logtest.NeverLogged(t, k, secretBytes(0x11), secretBytes(0x22))
	logtest.NeverLogged(t, *k, secretBytes(0x11), secretBytes(0x22))
}

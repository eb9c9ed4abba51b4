package devseal_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/seal/devseal"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

// The development sealer holds its key (as an AES key schedule, whose
// first round key is the key): nothing of it is printed or logged.
func TestDevSealerNeverReachesTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), devseal.KeyFile)
	s, err := devseal.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	key, _ := hex.DecodeString(strings.TrimSpace(string(b)))
	logtest.NeverLogged(t, s, key, key[:16], key[16:])
}

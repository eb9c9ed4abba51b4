package seal_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/seal/devseal"
)

func secrets(t testing.TB, n int) []*keyring.Secret {
	t.Helper()
	var out []*keyring.Secret
	for i := range n {
		s, err := keyring.NewSecret(bytes.Repeat([]byte{byte(i + 1)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func sealer(t testing.TB) *devseal.Sealer {
	t.Helper()
	s, err := devseal.Load(filepath.Join(t.TempDir(), devseal.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var now = time.Unix(1_800_000_000, 0)

func TestSealOpenRoundTrip(t *testing.T) {
	s := sealer(t)
	for _, n := range []int{1, 2, keyring.MaxEpoch} {
		in := &seal.Keyring{Generation: uint64(n) + 6, Epochs: secrets(t, n)}
		b, err := seal.Seal(context.Background(), s, "signer-a", in, now)
		if err != nil {
			t.Fatal(err)
		}
		out, h, err := seal.Open(context.Background(), s, "signer-a", b)
		if err != nil {
			t.Fatalf("%d epochs: %v", n, err)
		}
		if out.Generation != in.Generation || h.Epochs != uint32(n) || len(out.Epochs) != n || h.SealedAt != now.Unix() {
			t.Fatalf("%d epochs: got generation %d, %d epochs", n, out.Generation, len(out.Epochs))
		}
		for i := range in.Epochs {
			if !in.Epochs[i].Equal(out.Epochs[i]) {
				t.Fatalf("epoch %d differs", i+1)
			}
		}
	}
}

func TestSealedKeyringHidesSecrets(t *testing.T) {
	s := sealer(t)
	in := &seal.Keyring{Generation: 1, Epochs: secrets(t, 3)}
	b, _ := seal.Seal(context.Background(), s, "signer-a", in, now)
	for _, e := range in.Epochs {
		if bytes.Contains(b, keyring.AppendSecrets(nil, []*keyring.Secret{e})) {
			t.Fatal("a secret appears in the sealed bytes")
		}
	}
}

func TestSealRefusesEmptyKeyring(t *testing.T) {
	if _, err := seal.Seal(context.Background(), sealer(t), "s", &seal.Keyring{Generation: 1}, now); err == nil {
		t.Fatal("sealed an empty keyring")
	}
	if _, err := seal.Seal(context.Background(), sealer(t), "s", &seal.Keyring{Epochs: secrets(t, 1)}, now); err == nil {
		t.Fatal("sealed generation 0")
	}
}

// Every single-byte change is refused, as malformed or as failing
// authentication: the header is associated data.
func TestOpenRefusesEveryAlteredByte(t *testing.T) {
	s := sealer(t)
	b, _ := seal.Seal(context.Background(), s, "signer-a", &seal.Keyring{Generation: 3, Epochs: secrets(t, 2)}, now)
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		_, _, err := seal.Open(context.Background(), s, "signer-a", c)
		if !errors.Is(err, seal.ErrMalformed) && !errors.Is(err, seal.ErrAuthentication) &&
			!errors.Is(err, seal.ErrMismatch) && !errors.Is(err, seal.ErrUnwrap) {
			t.Fatalf("byte %d altered: %v", i, err)
		}
	}
}

func TestOpenRefusesTruncated(t *testing.T) {
	s := sealer(t)
	b, _ := seal.Seal(context.Background(), s, "signer-a", &seal.Keyring{Generation: 1, Epochs: secrets(t, 2)}, now)
	for n := range len(b) {
		if _, _, err := seal.Open(context.Background(), s, "signer-a", b[:n]); !errors.Is(err, seal.ErrMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, _, err := seal.Open(context.Background(), s, "signer-a", append(bytes.Clone(b), 0)); !errors.Is(err, seal.ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestOpenRefusesOtherSignerID(t *testing.T) {
	s := sealer(t)
	b, _ := seal.Seal(context.Background(), s, "signer-a", &seal.Keyring{Generation: 1, Epochs: secrets(t, 1)}, now)
	if _, _, err := seal.Open(context.Background(), s, "signer-b", b); !errors.Is(err, seal.ErrMismatch) {
		t.Fatalf("other signer_id: %v", err)
	}
}

func TestOpenRefusesOtherSealerKey(t *testing.T) {
	b, _ := seal.Seal(context.Background(), sealer(t), "signer-a", &seal.Keyring{Generation: 1, Epochs: secrets(t, 1)}, now)
	_, _, err := seal.Open(context.Background(), sealer(t), "signer-a", b)
	if !errors.Is(err, seal.ErrAuthentication) || !errors.Is(err, seal.ErrWrappedKey) || errors.Is(err, seal.ErrUnwrap) {
		t.Fatalf("other development key: %v", err)
	}
}

func TestDevSealerKeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), devseal.KeyFile)
	a, err := devseal.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := seal.Seal(context.Background(), a, "s", &seal.Keyring{Generation: 1, Epochs: secrets(t, 1)}, now)
	again, err := devseal.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := seal.Open(context.Background(), again, "s", b); err != nil {
		t.Fatalf("reloaded development key: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	s := sealer(f)
	b, _ := seal.Seal(context.Background(), s, "signer-a", &seal.Keyring{Generation: 2, Epochs: secrets(f, 2)}, now)
	f.Add(b)
	f.Add(b[:40])
	f.Add([]byte("NSKR\x01\x00\x00\x00\x01\xa0"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := seal.ParseHeader(in)
		if err == nil && (h.Epochs == 0 || h.Generation == 0) {
			t.Fatal("accepted an empty header")
		}
		k, _, err := seal.Open(context.Background(), s, "signer-a", in)
		if err == nil && !bytes.Equal(in, b) && len(k.Epochs) == 0 {
			t.Fatal("opened to nothing")
		}
	})
}

func TestDevKeyFileRefusesMalformed(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"short": "abcd\n", "not_hex": strings.Repeat("zz", 32), "long": strings.Repeat("ab", 33)} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o600)
		_, err := devseal.LoadOrCreateKey(path)
		if err == nil || strings.Contains(err.Error(), content[:4]) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

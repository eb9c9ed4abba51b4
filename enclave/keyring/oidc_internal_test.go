package keyring

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

func issuerRing(t *testing.T, n int) *Keyring {
	t.Helper()
	k := New()
	for i := range n {
		s, _ := NewSecret(bytes.Repeat([]byte{0x70 + byte(i)}, 32))
		if _, err := k.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// The issuer key of an epoch is derived once and kept; every epoch has its
// own; Issuers lists them epoch 1 first; an empty keyring and an epoch not
// held are refused with the keyring's errors.
func TestIssuerKeys(t *testing.T) {
	if _, err := New().Issuer(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty keyring: %v", err)
	}
	if _, err := New().Issuers(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty keyring: %v", err)
	}
	k := issuerRing(t, 3)
	if _, err := k.Issuer(4); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("epoch 4: %v", err)
	}
	cur, err := k.Issuer(0)
	if err != nil || cur.Epoch() != 3 {
		t.Fatalf("current: %v %v", cur, err)
	}
	again, _ := k.Issuer(3)
	if again != cur {
		t.Fatal("the issuer key of an epoch is derived again")
	}
	all, err := k.Issuers()
	if err != nil || len(all) != 3 {
		t.Fatalf("Issuers: %d, %v", len(all), err)
	}
	kids := map[string]bool{}
	for i, key := range all {
		if key.Epoch() != uint32(i+1) {
			t.Fatalf("Issuers[%d] is epoch %d", i, key.Epoch())
		}
		kids[key.KeyID()] = true
	}
	if len(kids) != 3 {
		t.Fatal("two epochs share an issuer key")
	}
	// The same secrets in another keyring give the same keys: every
	// replica publishes the same JWKS.
	other, _ := issuerRing(t, 3).Issuer(2)
	if other.KeyID() != all[1].KeyID() {
		t.Fatal("another keyring with the same secrets derives another key")
	}
}

// SignES256 is RFC 7518's ES256: 64 bytes r ‖ s over SHA-256, verifiable
// with the public key.
func TestIssuerSignES256(t *testing.T) {
	key, err := issuerRing(t, 1).Issuer(1)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("eyJhbGciOiJFUzI1NiJ9.e30")
	sig, err := key.SignES256(msg)
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature of %d bytes, %v", len(sig), err)
	}
	h := sha256.Sum256(msg)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key.PublicKey(), h[:], r, s) {
		t.Fatal("the signature does not verify")
	}
	if ecdsa.Verify(key.PublicKey(), h[:], s, r) {
		t.Fatal("the signature verifies with r and s swapped")
	}
	h[0] ^= 1
	if ecdsa.Verify(key.PublicKey(), h[:], r, s) {
		t.Fatal("the signature verifies another message")
	}
}

// The retry rule: after maxRetries+1 invalid candidates the derivation
// fails rather than using one.
func TestIssuerRetryExhausted(t *testing.T) {
	testOnlyP256Scalar = func([]byte) (*ecdsa.PrivateKey, error) { return nil, errors.New("invalid") }
	defer func() { testOnlyP256Scalar = p256Scalar }()
	if _, err := issuerRing(t, 1).Issuer(1); err == nil {
		t.Fatal("a key was derived with every candidate invalid")
	}
}

// p256Scalar refuses 0, n and above, and accepts n-1.
func TestP256ScalarBounds(t *testing.T) {
	n, _ := new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
	for name, tc := range map[string]struct {
		d  *big.Int
		ok bool
	}{
		"bad_zero":     {big.NewInt(0), false},
		"bad_n":        {n, false},
		"bad_n_plus_1": {new(big.Int).Add(n, big.NewInt(1)), false},
		"bad_all_ones": {new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)), false},
		"n_minus_1":    {new(big.Int).Sub(n, big.NewInt(1)), true},
		"one":          {big.NewInt(1), true},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p256Scalar(tc.d.FillBytes(make([]byte, 32)))
			if (err == nil) != tc.ok {
				t.Fatalf("p256Scalar: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// No form of the issuer key prints its scalar or the master secret.
func TestIssuerKeyNeverLogged(t *testing.T) {
	raw := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c, 0xc3}, 8)
	s, _ := NewSecret(raw)
	k := New()
	k.Add(s)
	key, err := k.Issuer(1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := key.priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("pointer", func(t *testing.T) { logtest.NeverLogged(t, key, d, raw) })
	t.Run("value", func(t *testing.T) { logtest.NeverLogged(t, *key, d, raw) })
	t.Run("list", func(t *testing.T) { logtest.NeverLogged(t, []*IssuerKey{key, key}, d, raw) })
}

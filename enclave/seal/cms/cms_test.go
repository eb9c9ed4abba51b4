package cms_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/seal/cms"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
)

var key = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    kmstest.EncryptOptions
		n    int
	}{
		{"DER, issuer and serial", kmstest.EncryptOptions{}, 32},
		{"BER indefinite, subject key id (as KMS answers)", kmstest.EncryptOptions{Indefinite: true, SubjectKeyID: []byte{1, 2, 3}}, 32},
		{"block-sized plaintext, 16-byte segments", kmstest.EncryptOptions{Indefinite: true, Segment: 16}, 48},
		{"explicit empty OAEP label", kmstest.EncryptOptions{ExplicitLabel: true}, 32},
		{"long plaintext", kmstest.EncryptOptions{}, 1000},
	} {
		plain := bytes.Repeat([]byte{0xa5}, tc.n)
		b, err := kmstest.EncryptCMS(&key.PublicKey, plain, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cms.Decrypt(b, key)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: %x, %v", tc.name, got, err)
		}
	}
}

func TestDecryptRefusesOtherKey(t *testing.T) {
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	b, _ := kmstest.EncryptCMS(&other.PublicKey, make([]byte, 32), kmstest.EncryptOptions{})
	if _, err := cms.Decrypt(b, key); !errors.Is(err, cms.ErrMalformed) {
		t.Fatalf("wrapped to another key: %v", err)
	}
}

func TestDecryptRefusesTruncatedAndTrailing(t *testing.T) {
	for _, indef := range []bool{false, true} {
		b, _ := kmstest.EncryptCMS(&key.PublicKey, make([]byte, 32), kmstest.EncryptOptions{Indefinite: indef})
		for n := range len(b) {
			if _, err := cms.Decrypt(b[:n], key); err == nil {
				t.Fatalf("indefinite=%v: truncated to %d decrypted", indef, n)
			}
		}
		if _, err := cms.Decrypt(append(bytes.Clone(b), 0), key); err == nil {
			t.Fatalf("indefinite=%v: trailing byte accepted", indef)
		}
	}
}

// Altering any byte either fails or (in the padding or ciphertext) yields
// other bytes; it never panics. The content key is authenticated only by
// RSA-OAEP, so the caller's AEAD over the sealed keyring is what detects
// changed content.
func TestDecryptSurvivesEveryAlteredByte(t *testing.T) {
	b, _ := kmstest.EncryptCMS(&key.PublicKey, make([]byte, 32), kmstest.EncryptOptions{Indefinite: true})
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		cms.Decrypt(c, key)
	}
}

func FuzzDecrypt(f *testing.F) {
	for _, indef := range []bool{false, true} {
		b, _ := kmstest.EncryptCMS(&key.PublicKey, make([]byte, 32), kmstest.EncryptOptions{Indefinite: indef, SubjectKeyID: []byte{9}})
		f.Add(b)
	}
	f.Add([]byte{0x30, 0x80, 0x30, 0x80, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		cms.Decrypt(in, key)
	})
}

package envelope_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func bigOne() *big.Int { return big.NewInt(1) }

func esSign(t *testing.T, key *ecdsa.PrivateKey, input string) string {
	t.Helper()
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return base64.RawURLEncoding.EncodeToString(sig)
}

func replyJWK(t testing.TB) *jose.JSONWebKey {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &jose.JSONWebKey{Key: &k.PublicKey}
}

func privateJWK(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, err := (&jose.JSONWebKey{Key: k}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawMap encodes alternating keys and values as a CBOR map in that order.
func rawMap(t *testing.T, kv []any) []byte {
	t.Helper()
	out := []byte{0xa0 | byte(len(kv)/2)}
	for _, x := range kv {
		b, err := cbor.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// flipSignatureBit flips one bit of a compact JWS's signature bytes, keeping
// the encoding valid.
func flipSignatureBit(t *testing.T, jws []byte) []byte {
	t.Helper()
	parts := strings.Split(string(jws), ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 1
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return []byte(strings.Join(parts, "."))
}

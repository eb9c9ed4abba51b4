package keyring_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHKDFVectors checks the HKDF the derivations rest on against RFC 5869
// and the WebAuthn specification's vectors.
func TestHKDFVectors(t *testing.T) {
	var rfc struct {
		Cases []struct {
			IKM  string `json:"ikm_hex"`
			Salt string `json:"salt_hex"`
			Info string `json:"info_hex"`
			L    int    `json:"L"`
			PRK  string `json:"prk_hex"`
			OKM  string `json:"okm_hex"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "hkdf", "rfc5869-sha256.json"), &rfc); err != nil {
		t.Fatal(err)
	}
	if len(rfc.Cases) != 3 {
		t.Fatalf("%d RFC 5869 cases, want 3", len(rfc.Cases))
	}
	for i, c := range rfc.Cases {
		prk, err := hkdf.Extract(sha256.New, unhex(t, c.IKM), unhex(t, c.Salt))
		if err != nil || !bytes.Equal(prk, unhex(t, c.PRK)) {
			t.Errorf("case %d: PRK %x", i+1, prk)
		}
		okm, err := hkdf.Key(sha256.New, unhex(t, c.IKM), unhex(t, c.Salt), string(unhex(t, c.Info)), c.L)
		if err != nil || !bytes.Equal(okm, unhex(t, c.OKM)) {
			t.Errorf("case %d: OKM %x", i+1, okm)
		}
	}
	var wa struct {
		Cases []struct {
			IKMHex  string `json:"ikm_hex"`
			Salt    string `json:"salt_hex"`
			InfoHex string `json:"info_hex"`
			L       int    `json:"L"`
			OKM     string `json:"okm_hex"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "hkdf", "webauthn-spec-hkdf-sha256.json"), &wa); err != nil {
		t.Fatal(err)
	}
	if len(wa.Cases) < 100 {
		t.Fatalf("%d WebAuthn HKDF cases", len(wa.Cases))
	}
	for i, c := range wa.Cases {
		okm, err := hkdf.Key(sha256.New, unhex(t, c.IKMHex), unhex(t, c.Salt), string(unhex(t, c.InfoHex)), c.L)
		if err != nil || !bytes.Equal(okm, unhex(t, c.OKM)) {
			t.Errorf("WebAuthn case %d: %v", i, err)
		}
	}
}

func ring(t *testing.T, secrets ...byte) *keyring.Keyring {
	t.Helper()
	k := keyring.New()
	for _, b := range secrets {
		s, err := keyring.NewSecret(bytes.Repeat([]byte{b}, 32))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// TestDerivationsMatchDesign recomputes DESIGN §5.1 with HKDF written out
// and compares every kind of key under every epoch.
func TestDerivationsMatchDesign(t *testing.T) {
	k := ring(t, 0x11, 0x22)
	o, err := keyring.ParseOmni(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, epoch := range []uint32{1, 2} {
		ikm := bytes.Repeat([]byte{byte(0x11 * epoch)}, 32)
		for kind, label := range map[keyring.Kind]string{keyring.Wallet: "agentkeys-evm-wallet", keyring.Device: "agentkeys-k10-device"} {
			info := append(append([]byte{byte(epoch)}, label...), o[:]...)
			want, _ := hkdf.Key(sha256.New, ikm, []byte("agentkeys-signer-v0"), string(info), 32)
			got, err := k.Derive(kind, epoch, o)
			if err != nil {
				t.Fatal(err)
			}
			wantKey, _ := crypto.ToECDSA(want)
			if got.Address() != crypto.PubkeyToAddress(wantKey.PublicKey) || got.Epoch != epoch {
				t.Errorf("epoch %d %s: key differs from DESIGN §5.1", epoch, label)
			}
			hash := crypto.Keccak256([]byte("m"))
			sig, err := got.Sign(hash)
			if err != nil {
				t.Fatal(err)
			}
			if wantSig, _ := crypto.Sign(hash, wantKey); !bytes.Equal(sig, wantSig) {
				t.Errorf("epoch %d %s: signature differs from go-ethereum's RFC 6979 signature", epoch, label)
			}
		}
		kek, e, err := k.KEK(epoch, o)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := hkdf.Key(sha256.New, ikm, []byte("agentkeys.kek-salt.v2"), "agentkeys.user.v1"+string(o[:]), 32)
		if !bytes.Equal(kek, want) || e != epoch {
			t.Errorf("epoch %d: KEK differs from DESIGN §5.1", epoch)
		}
	}
	cur, err := k.Derive(keyring.Wallet, 0, o)
	if err != nil || cur.Epoch != 2 {
		t.Fatalf("epoch 0 should mean the current epoch 2: %v %d", err, cur.Epoch)
	}
	wallet, _ := k.Derive(keyring.Wallet, 1, o)
	device, _ := k.Derive(keyring.Device, 1, o)
	if wallet.Address() == device.Address() {
		t.Fatal("wallet and device keys coincide")
	}
}

func TestEpochErrors(t *testing.T) {
	var o keyring.Omni
	if _, err := keyring.New().Derive(keyring.Wallet, 0, o); !errors.Is(err, keyring.ErrEmpty) {
		t.Fatalf("empty keyring: %v, want ErrEmpty", err)
	}
	k := ring(t, 1)
	if _, err := k.Derive(keyring.Wallet, 2, o); !errors.Is(err, keyring.ErrUnknownEpoch) {
		t.Fatalf("epoch 2 of 1: %v, want ErrUnknownEpoch", err)
	}
	if _, _, err := k.KEK(9, o); !errors.Is(err, keyring.ErrUnknownEpoch) {
		t.Fatalf("KEK epoch 9: %v, want ErrUnknownEpoch", err)
	}
	if _, err := keyring.NewSecret(make([]byte, 31)); err == nil || strings.Contains(err.Error(), "00") {
		t.Fatalf("short secret: %v", err)
	}
}

func TestParseOmni(t *testing.T) {
	good := strings.Repeat("ab", 32)
	if o, err := keyring.ParseOmni(strings.ToUpper(good)); err != nil || o.String() != good {
		t.Fatalf("upper case: %v %s", err, o)
	}
	for name, s := range map[string]string{
		"bad_0x_prefix": "0x" + good[2:],
		"bad_short":     good[:62],
		"bad_long":      good + "ab",
		"bad_non_hex":   "zz" + good[2:],
		"bad_empty":     "",
	} {
		if _, err := keyring.ParseOmni(s); !errors.Is(err, keyring.ErrOmni) {
			t.Errorf("%s: %v, want ErrOmni", name, err)
		}
	}
}

func TestSecretHasNoPrintableForm(t *testing.T) {
	s, _ := keyring.NewSecret(bytes.Repeat([]byte{0x5a}, 32))
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s", "%q", "%d"} {
		if out := fmt.Sprintf(verb, s) + fmt.Sprintf(verb, *s); strings.Contains(out, "5a") || strings.Contains(out, "90") || strings.Contains(out, "Z") {
			t.Fatalf("%s prints the secret: %s", verb, out)
		}
	}
	s2, _ := keyring.NewSecret(bytes.Repeat([]byte{0x5a}, 32))
	s3, _ := keyring.NewSecret(bytes.Repeat([]byte{0x5b}, 32))
	if !s.Equal(s2) || s.Equal(s3) {
		t.Fatal("Equal is wrong")
	}
}

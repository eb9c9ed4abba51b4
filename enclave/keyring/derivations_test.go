package keyring

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/crypto"
)

// derivationVectors is the JSON block of docs/derivations.md.
type derivationVectors struct {
	MasterSecrets map[string]string  `json:"master_secrets"`
	Salts         map[string]string  `json:"salts"`
	Labels        map[string]string  `json:"labels"`
	Vectors       []derivationVector `json:"vectors"`
}

type derivationVector struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // wallet, device, kek or oidc_issuer
	Epoch uint32 `json:"epoch"`
	Omni  string `json:"omni,omitempty"`
	// Retry is how many candidates are taken as invalid scalars before
	// the one kept (the retry byte of the last expansion).
	Retry         int    `json:"retry,omitempty"`
	Info          string `json:"info"`
	PrivateKey    string `json:"private_key,omitempty"`
	PublicKey     string `json:"public_key,omitempty"`
	Address       string `json:"address,omitempty"`
	DeviceKeyHash string `json:"device_key_hash,omitempty"`
	KEK           string `json:"kek,omitempty"`
	// The OIDC issuer key's public coordinates (base64url, as its JWK
	// writes them) and its RFC 7638 kid.
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	KID string `json:"kid,omitempty"`
}

// readDerivationVectors extracts the first ```json block of
// docs/derivations.md.
func readDerivationVectors(t *testing.T) *derivationVectors {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "derivations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```json\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("docs/derivations.md has no ```json block")
	}
	var v derivationVectors
	dec := json.NewDecoder(strings.NewReader(block))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("docs/derivations.md vectors: %v", err)
	}
	return &v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}

// TestDerivationsDocument recomputes every vector of docs/derivations.md
// two ways — with the keyring, and with HKDF over the salt and info bytes
// the document states — and holds both to the document's outputs: the test
// fails when the code, the document's formula or its values change.
func TestDerivationsDocument(t *testing.T) {
	doc := readDerivationVectors(t)
	constants := map[string]string{
		"salts.wallet_device": walletSalt, "salts.kek": kekSalt, "salts.oidc_issuer": issuerSalt,
		"labels.wallet": walletLabel, "labels.device": deviceLabel, "labels.kek_info": kekInfo,
		"labels.oidc_issuer": issuerLabel,
	}
	stated := map[string]string{
		"salts.wallet_device": doc.Salts["wallet_device"], "salts.kek": doc.Salts["kek"], "salts.oidc_issuer": doc.Salts["oidc_issuer"],
		"labels.wallet": doc.Labels["wallet"], "labels.device": doc.Labels["device"], "labels.kek_info": doc.Labels["kek_info"],
		"labels.oidc_issuer": doc.Labels["oidc_issuer"],
	}
	if !reflect.DeepEqual(constants, stated) {
		t.Fatalf("constants: the code has %v, the document %v", constants, stated)
	}
	// A keyring per vector: its public-key cache must not answer for a
	// key derived with the retry rule forced.
	keyring := func(t *testing.T) *Keyring {
		k := New()
		for e := 1; e <= len(doc.MasterSecrets); e++ {
			s, err := NewSecret(unhex(t, doc.MasterSecrets[strconv.Itoa(e)]))
			if err != nil {
				t.Fatalf("master secret %d: %v", e, err)
			}
			if _, err := k.Add(s); err != nil {
				t.Fatal(err)
			}
		}
		return k
	}
	if len(doc.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range doc.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			got := computeVector(t, keyring(t), doc, v)
			if !reflect.DeepEqual(v, got) {
				stated, _ := json.Marshal(v)
				computed, _ := json.Marshal(got)
				t.Fatalf("the document states\n%s\nthe code computes\n%s", stated, computed)
			}
		})
	}
}

// computeVector derives what v names and returns v with the outputs as the
// code computes them. It also checks that HKDF over the document's salt and
// info gives the document's key.
func computeVector(t *testing.T, k *Keyring, doc *derivationVectors, v derivationVector) derivationVector {
	t.Helper()
	secret := unhex(t, doc.MasterSecrets[strconv.Itoa(int(v.Epoch))])
	got := derivationVector{Name: v.Name, Kind: v.Kind, Epoch: v.Epoch, Omni: v.Omni, Retry: v.Retry}
	expand := func(salt string) []byte {
		okm, err := hkdf.Key(sha256.New, secret, []byte(salt), string(unhex(t, v.Info)), 32)
		if err != nil {
			t.Fatal(err)
		}
		return okm
	}
	if v.Kind == "oidc_issuer" {
		return computeIssuerVector(t, k, v, got, expand(doc.Salts["oidc_issuer"]))
	}
	o, err := ParseOmni(v.Omni)
	if err != nil {
		t.Fatal(err)
	}
	switch v.Kind {
	case "kek":
		kek, e, err := k.KEK(v.Epoch, o)
		if err != nil || e != v.Epoch {
			t.Fatalf("KEK: %v, epoch %d", err, e)
		}
		got.Info = hex.EncodeToString(append([]byte(kekInfo), o[:]...))
		got.KEK = hex.EncodeToString(kek)
		if !bytes.Equal(expand(doc.Salts["kek"]), kek) {
			t.Error("HKDF over the document's salt and info is not the keyring's KEK")
		}
	case "wallet", "device":
		kind, label := Wallet, walletLabel
		if v.Kind == "device" {
			kind, label = Device, deviceLabel
		}
		rejected := 0
		testOnlyToScalar = func(b []byte) (*secp256k1.PrivateKey, error) {
			if rejected < v.Retry {
				rejected++
				return nil, errors.New("taken as an invalid scalar")
			}
			return toScalar(b)
		}
		defer func() { testOnlyToScalar = toScalar }()
		key, err := k.Derive(kind, v.Epoch, o)
		if err != nil || key.Epoch != v.Epoch {
			t.Fatalf("Derive: %v", err)
		}
		info := append(append([]byte{byte(v.Epoch)}, label...), o[:]...)
		if v.Retry > 0 {
			info = append(info, byte(v.Retry))
		}
		got.Info = hex.EncodeToString(info)
		priv := key.priv.Key.Bytes()
		got.PrivateKey = hex.EncodeToString(priv[:])
		pub := key.Public()
		got.PublicKey = "0x" + hex.EncodeToString(pub.Uncompressed[:])
		got.Address = "0x" + hex.EncodeToString(pub.Address[:])
		if kind == Device {
			got.DeviceKeyHash = "0x" + hex.EncodeToString(crypto.Keccak256(pub.Address[:]))
		}
		if !bytes.Equal(expand(doc.Salts["wallet_device"]), priv[:]) {
			t.Error("HKDF over the document's salt and info is not the keyring's key")
		}
	default:
		t.Fatalf("kind %q", v.Kind)
	}
	return got
}

// computeIssuerVector derives the OIDC issuer key v names with the keyring
// and returns v with its outputs. Independently, the document's expansion
// (HKDF over its salt and info) must be the keyring's scalar, crypto/ecdh
// must give the same point for it, and the kid must be SHA-256 of the JWK
// members that encoding/json writes sorted and without spaces.
func computeIssuerVector(t *testing.T, k *Keyring, v, got derivationVector, expanded []byte) derivationVector {
	t.Helper()
	rejected := 0
	testOnlyP256Scalar = func(b []byte) (*ecdsa.PrivateKey, error) {
		if rejected < v.Retry {
			rejected++
			return nil, errors.New("taken as an invalid scalar")
		}
		return p256Scalar(b)
	}
	defer func() { testOnlyP256Scalar = p256Scalar }()
	key, err := k.Issuer(v.Epoch)
	if err != nil || key.Epoch() != v.Epoch {
		t.Fatalf("Issuer: %v", err)
	}
	info := append([]byte{byte(v.Epoch)}, issuerLabel...)
	if v.Retry > 0 {
		info = append(info, byte(v.Retry))
	}
	got.Info = hex.EncodeToString(info)
	priv, err := key.priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	got.PrivateKey = hex.EncodeToString(priv)
	b64 := base64.RawURLEncoding.EncodeToString
	got.X, got.Y, got.KID = b64(key.X()), b64(key.Y()), key.KeyID()

	if !bytes.Equal(expanded, priv) {
		t.Error("HKDF over the document's salt and info is not the keyring's issuer scalar")
	}
	other, err := ecdh.P256().NewPrivateKey(expanded)
	if err != nil {
		t.Fatalf("crypto/ecdh refuses the document's scalar: %v", err)
	}
	point := other.PublicKey().Bytes()
	if !bytes.Equal(point[1:33], key.X()) || !bytes.Equal(point[33:], key.Y()) {
		t.Error("crypto/ecdh computes another public point")
	}
	members, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])})
	h := sha256.Sum256(members)
	if b64(h[:]) != key.KeyID() {
		t.Errorf("kid %s, RFC 7638 over %s gives %s", key.KeyID(), members, b64(h[:]))
	}
	return got
}

package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

func TestPersonalSignVectors(t *testing.T) {
	var v struct {
		Cases []struct {
			Name        string `json:"name"`
			MessageHex  string `json:"message_hex"`
			PrivateKey  string `json:"private_key"`
			Address     string `json:"address"`
			MessageHash string `json:"message_hash"`
			Signature   string `json:"signature"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "eth", "eip191-personal-sign.json"), &v); err != nil {
		t.Fatal(err)
	}
	signed := 0
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			msg := unhex(t, c.MessageHex)
			if got := service.PersonalHash(msg); !bytes.Equal(got, unhex(t, c.MessageHash)) {
				t.Fatalf("hash %x, want %s", got, c.MessageHash)
			}
			if c.PrivateKey == "" {
				return
			}
			signed++
			key, err := keyring.NewKey(unhex(t, c.PrivateKey))
			if err != nil {
				t.Fatal(err)
			}
			got, err := service.SignPersonal(key, msg)
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, c.Signature)
			want[64] -= 27 // the vectors use v ∈ {27,28}; the signer answers {0,1}
			if !bytes.Equal(unhex(t, got), want) {
				t.Fatalf("signature %s, want %x", got, want)
			}
		})
	}
	if signed != 4 {
		t.Fatalf("%d signature vectors, want 4", signed)
	}
}

func TestEIP712MailExample(t *testing.T) {
	var v struct {
		TypedData  json.RawMessage `json:"typed_data"`
		PrivateKey string          `json:"private_key"`
		Expected   struct {
			HashStruct      string `json:"hashStruct_Mail"`
			DomainSeparator string `json:"domainSeparator"`
			Digest          string `json:"digest"`
			Signature       string `json:"signature_65_bytes_rsv"`
		} `json:"expected"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "eth", "eip712-mail-example.json"), &v); err != nil {
		t.Fatal(err)
	}
	d, err := service.HashTypedData(v.TypedData)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]byte{
		"primary_type_hash": {d.PrimaryTypeHash, unhex(t, v.Expected.HashStruct)},
		"domain_separator":  {d.DomainSeparator, unhex(t, v.Expected.DomainSeparator)},
		"digest":            {d.Digest, unhex(t, v.Expected.Digest)},
	} {
		if !bytes.Equal(pair[0], pair[1]) {
			t.Errorf("%s %x, want %x", name, pair[0], pair[1])
		}
	}
	priv, _ := crypto.ToECDSA(unhex(t, v.PrivateKey))
	sig, err := crypto.Sign(d.Digest, priv)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, v.Expected.Signature)
	want[64] -= 27
	if !bytes.Equal(sig, want) {
		t.Fatalf("signature %x, want %x", sig, want)
	}
}

// corpusCase is one typed-data case of the ethers and go-ethereum corpora.
type corpusCase struct {
	Name        string          `json:"name"`
	Domain      json.RawMessage `json:"domain"`
	PrimaryType string          `json:"primaryType"`
	Types       json.RawMessage `json:"types"`
	Data        json.RawMessage `json:"data"`
	Digest      string          `json:"digest"`
}

func (c corpusCase) v4() []byte {
	return []byte(fmt.Sprintf(`{"types":%s,"primaryType":%q,"domain":%s,"message":%s}`, c.Types, c.PrimaryType, c.Domain, c.Data))
}

func TestTypedDataCorpora(t *testing.T) {
	for _, file := range []string{"eip712-ethers-typed-data.json", "eip712-geth-apitypes-typed-data.json"} {
		t.Run(file, func(t *testing.T) {
			var cases []corpusCase
			if err := json.Unmarshal(testvectors.Read(t, "eth", file), &cases); err != nil {
				t.Fatal(err)
			}
			hashed, refused := 0, 0
			for _, c := range cases {
				d, err := service.HashTypedData(c.v4())
				if string(c.Domain) == "{}" {
					// An empty domain is refused (DESIGN: documented in
					// docs/protocol.md): nothing binds the signature to a
					// context.
					var e *api.Error
					if err == nil || !asError(err, &e) || e.Code != api.CodeInvalidTypedData {
						t.Errorf("%s (empty domain): %v, want invalid_typed_data", c.Name, err)
					}
					refused++
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", c.Name, err)
					continue
				}
				if !bytes.Equal(d.Digest, unhex(t, c.Digest)) {
					t.Errorf("%s: digest %x, want %s", c.Name, d.Digest, c.Digest)
				}
				hashed++
			}
			if hashed != 123 {
				t.Fatalf("%d digests checked, want 123 (%d empty domains refused)", hashed, refused)
			}
		})
	}
}

func TestGethSignerCoreCases(t *testing.T) {
	var v struct {
		Cases []struct {
			Name            string          `json:"name"`
			TypedData       json.RawMessage `json:"typed_data"`
			ExpectedDigest  string          `json:"expected_digest"`
			Signature       string          `json:"signature"`
			RecoveredSigner string          `json:"expected_recovered_signer"`
			MustDifferFrom  string          `json:"expected_digest_must_differ_from"`
		} `json:"cases"`
		Files []struct {
			File     string `json:"file"`
			JSON     string `json:"typed_data_json_verbatim"`
			Expected string `json:"expected"`
		} `json:"json_files"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "eth", "eip712-geth-signer-core-cases.json"), &v); err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			d, err := service.HashTypedData(c.TypedData)
			if err != nil {
				t.Fatal(err)
			}
			if c.MustDifferFrom != "" {
				if bytes.Equal(d.Digest, unhex(t, c.MustDifferFrom)) {
					t.Fatal("hashing without chainId gave the chainId digest")
				}
				return
			}
			if !bytes.Equal(d.Digest, unhex(t, c.ExpectedDigest)) {
				t.Fatalf("digest %x, want %s", d.Digest, c.ExpectedDigest)
			}
			if c.Signature != "" {
				if got := recoverAddress(t, d.Digest, c.Signature); got != strings.ToLower(c.RecoveredSigner) {
					t.Fatalf("signature recovers to %s, want %s", got, c.RecoveredSigner)
				}
			}
		})
	}
	ok, fail := 0, 0
	for _, f := range v.Files {
		_, err := service.HashTypedData([]byte(f.JSON))
		switch {
		case strings.HasPrefix(f.Expected, "ok"):
			ok++
			if err != nil {
				t.Errorf("%s: %v, want hashed", f.File, err)
			}
		default:
			fail++
			if err == nil {
				t.Errorf("%s: hashed, want refused", f.File)
			}
		}
	}
	if ok != 3 || fail != 10 {
		t.Fatalf("%d ok and %d expfail files, want 3 and 10", ok, fail)
	}
}

func TestSignTypedDataSignsWithTheWallet(t *testing.T) {
	h := newHarness(t, nil)
	var v struct {
		TypedData json.RawMessage `json:"typed_data"`
		Expected  struct {
			Digest string `json:"digest"`
		} `json:"expected"`
	}
	json.Unmarshal(testvectors.Read(t, "eth", "eip712-mail-example.json"), &v)
	var r api.SignTypedDataResponse
	if err := h.call("v1/sign/typed-data", map[string]any{"actor_omni": omni, "typed_data": v.TypedData}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Digest != v.Expected.Digest || recoverAddress(t, unhex(t, r.Digest), r.Signature) != h.wallet(0) || r.Address != h.wallet(0) {
		t.Fatalf("typed-data answer %+v does not recover to the wallet", r)
	}
	var dev api.DevSignTypedDataResponse
	if err := h.call("dev/sign-typed-data", map[string]any{"omni_account": omni, "typed_data": v.TypedData}, &dev); err != nil {
		t.Fatal(err)
	}
	if dev.Signature != r.Signature || dev.KeyVersion != 2 {
		t.Fatalf("dev answer %+v", dev)
	}
}

func asError(err error, target **api.Error) bool {
	e, ok := err.(*api.Error)
	if ok {
		*target = e
	}
	return ok
}

package service_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

const omni = "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKeys holds two epochs with fixed secrets.
func testKeys(t testing.TB) *keyring.Keyring {
	t.Helper()
	k := keyring.New()
	for _, b := range []byte{0x42, 0x43} {
		s, _ := keyring.NewSecret(bytes.Repeat([]byte{b}, 32))
		if _, err := k.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// testOIDC is an oidc member as config.Parse leaves it.
func testOIDC() *config.OIDC {
	return &config.OIDC{
		Issuer: "https://oidc.example.com/signer", Audiences: []string{"sts.amazonaws.com", "other.example"},
		JWKSURI: "https://keys.example.com/jwks.json", MinTTL: 60, MaxTTL: 3600,
	}
}

type harness struct {
	t       testing.TB
	methods map[string]service.Handler
	keys    *keyring.Keyring
}

func newHarness(t testing.TB, p *config.Policy) *harness {
	t.Helper()
	keys := testKeys(t)
	if p == nil {
		p = &config.Policy{Skew: time.Minute}
	}
	s := service.New(service.Options{Keys: keys, Policy: p, Clock: func() time.Time { return now }, OIDC: testOIDC()})
	return &harness{t: t, methods: s.Methods(true), keys: keys}
}

// call runs a handler in process and round-trips its result through JSON,
// as the wire would.
func (h *harness) call(method string, params any, out any) error {
	h.t.Helper()
	raw, err := json.Marshal(params)
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := h.methods[method](context.Background(), &service.Request{Params: raw})
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatal(err)
		}
	}
	return nil
}

// wallet is derive-address's answer for omni at epoch (0: current).
func (h *harness) wallet(epoch uint32) string {
	h.t.Helper()
	var r api.DeriveAddressResponse
	p := map[string]any{"operator_omni": omni}
	if epoch != 0 {
		p["k3_epoch"] = epoch
	}
	if err := h.call("v1/derive-address", p, &r); err != nil {
		h.t.Fatal(err)
	}
	return r.Address
}

// recover returns the lowercase address a 65-byte r‖s‖v signature (v in
// {0,1,27,28}) of hash recovers to.
func recoverAddress(t testing.TB, hash []byte, sigHex string) string {
	t.Helper()
	sig := unhex(t, sigHex)
	if len(sig) != 65 {
		t.Fatalf("signature of %d bytes", len(sig))
	}
	if sig[64] >= 27 {
		sig[64] -= 27
	}
	pub, err := crypto.SigToPub(hash, sig)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(crypto.PubkeyToAddress(*pub).Hex())
}

func wantCode(t *testing.T, err error, code api.Code) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func commonAddress(b [20]byte) string { return common.Address(b).Hex() }

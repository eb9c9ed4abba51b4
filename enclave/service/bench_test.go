package service_test

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// The handler benchmarks run each method in process exactly as the enclave
// does after authentication: decode the params, derive, sign, build the
// result. BenchmarkCrypto* perform only the cryptography such a request
// needs — HKDF, keccak and one secp256k1 signature — measured in the same
// run, so the ratio of the two is the handler's overhead.

var sink any

func benchHandler(b *testing.B, method string, params any) {
	h := newHarness(b, nil)
	raw, err := json.Marshal(params)
	if err != nil {
		b.Fatal(err)
	}
	handler := h.methods[method]
	req := &service.Request{Params: raw}
	if _, err := handler(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := handler(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		sink = res
	}
}

// cryptoFloor is HKDF to the wallet scalar, keccak256 of the message (EIP-191
// prefixed) and an RFC 6979 secp256k1 signature.
func cryptoFloor(b *testing.B, msg []byte) {
	k3 := bytes.Repeat([]byte{0x43}, 32)
	omniBytes, _ := hex.DecodeString(omni)
	info := string(append(append([]byte{2}, "agentkeys-evm-wallet"...), omniBytes...))
	b.ReportAllocs()
	for b.Loop() {
		okm, err := hkdf.Key(sha256.New, k3, []byte("agentkeys-signer-v0"), info, 32)
		if err != nil {
			b.Fatal(err)
		}
		priv := secp256k1.PrivKeyFromBytes(okm)
		hash := crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n"), msg)
		sink = decredecdsa.SignCompact(priv, hash, false)
	}
}

func BenchmarkHandlerDevSignMessage(b *testing.B) {
	benchHandler(b, "dev/sign-message", map[string]string{"omni_account": omni, "message_hex": "0x68656c6c6f"})
}

func BenchmarkCryptoSignMessage(b *testing.B) { cryptoFloor(b, []byte("hello")) }

func BenchmarkHandlerDeriveAddress(b *testing.B) {
	benchHandler(b, "v1/derive-address", map[string]string{"operator_omni": omni})
}

func BenchmarkHandlerSignAuditRow(b *testing.B) {
	em, _ := cbor.CoreDetEncOptions().EncMode()
	row, _ := em.Marshal(map[string]any{"actor": omni, "op": "read", "ts": 1764331200})
	benchHandler(b, "v1/sign/audit-row", map[string]string{"actor_omni": omni, "audit_row": hex.EncodeToString(row)})
}

func BenchmarkCryptoSignAuditRow(b *testing.B) { cryptoFloor(b, make([]byte, 32)) }

func BenchmarkHandlerSignTypedData(b *testing.B) {
	var v struct {
		TypedData json.RawMessage `json:"typed_data"`
	}
	json.Unmarshal(testvectors.Read(b, "eth", "eip712-mail-example.json"), &v)
	benchHandler(b, "v1/sign/typed-data", map[string]any{"actor_omni": omni, "typed_data": v.TypedData})
}

func BenchmarkHandlerSignSIWE(b *testing.B) {
	h := newHarness(b, nil)
	msg := "example.com wants you to sign in with your Ethereum account:\n" + checksummed(h.wallet(0)) +
		"\n\n\nURI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: abcdefgh1\nIssued At: 2026-11-28T11:59:00Z"
	benchHandler(b, "v1/sign/siwe", map[string]string{"actor_omni": omni, "siwe_message": msg})
}

// BenchmarkCryptoSignSIWE is the floor of a SIWE request: the same crypto
// over a message of the benchmark's size.
func BenchmarkCryptoSignSIWE(b *testing.B) {
	msg := "example.com wants you to sign in with your Ethereum account:\n0x0000000000000000000000000000000000000000" +
		"\n\n\nURI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: abcdefgh1\nIssued At: 2026-11-28T11:59:00Z"
	cryptoFloor(b, []byte(msg))
}

package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sort"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/envelope"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// FuzzMethodParams sends arbitrary params to every method. Invariants: no
// panic, and every refusal is a typed *envelope.Error other than internal.
func FuzzMethodParams(f *testing.F) {
	h := newHarness(f, nil)
	names := make([]string, 0, len(h.methods))
	for n := range h.methods {
		names = append(names, n)
	}
	sort.Strings(names)
	var mail struct {
		TypedData json.RawMessage `json:"typed_data"`
	}
	json.Unmarshal(testvectors.Read(f, "eth", "eip712-mail-example.json"), &mail)
	seeds := []any{
		map[string]any{"operator_omni": omni, "k3_epoch": 1},
		map[string]any{"omni_account": omni, "message_hex": "0x00"},
		map[string]any{"actor_omni": omni, "typed_data": mail.TypedData},
		map[string]any{"omni_account": omni, "typed_data": mail.TypedData},
		map[string]any{"actor_omni": omni, "audit_row": "a16161 01"},
		map[string]any{"device_key_hash": omni, "payload": "00", "sig": "00"},
		map[string]any{"actor_omni": omni, "operator_omni": omni, "service": "s", "op": "o", "data_class": "d", "client_nonce": "n", "client_ts": 1},
	}
	for i, s := range seeds {
		b, _ := json.Marshal(s)
		f.Add(uint8(i), b)
	}
	reply, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Fuzz(func(t *testing.T, which uint8, params []byte) {
		name := names[int(which)%len(names)]
		_, err := h.methods[name](context.Background(), &service.Request{Params: params, ReplyKey: &jose.JSONWebKey{Key: &reply.PublicKey}})
		if err == nil {
			return
		}
		var e *envelope.Error
		if !errors.As(err, &e) || e.Code == envelope.CodeInternal {
			t.Fatalf("%s: untyped refusal %v", name, err)
		}
	})
}

func FuzzHashTypedData(f *testing.F) {
	var mail struct {
		TypedData json.RawMessage `json:"typed_data"`
	}
	json.Unmarshal(testvectors.Read(f, "eth", "eip712-mail-example.json"), &mail)
	f.Add([]byte(mail.TypedData))
	var cases []corpusCase
	json.Unmarshal(testvectors.Read(f, "eth", "eip712-geth-apitypes-typed-data.json"), &cases)
	for _, c := range cases[:20] {
		f.Add(c.v4())
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := service.HashTypedData(raw)
		if err == nil && len(d.Digest) != 32 {
			t.Fatal("digest is not 32 bytes")
		}
		if err != nil && envelope.CodeOf(err) != envelope.CodeInvalidTypedData {
			t.Fatalf("untyped refusal: %v", err)
		}
	})
}

func FuzzCheckAuditRow(f *testing.F) {
	f.Add([]byte{0xa1, 0x61, 0x61, 0x01})
	f.Add([]byte{0xbf, 0x61, 0x61, 0x01, 0xff})
	dm, _ := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden, TagsMd: cbor.TagsForbidden}.DecMode()
	em, _ := cbor.CoreDetEncOptions().EncMode()
	f.Fuzz(func(t *testing.T, row []byte) {
		err := service.CheckAuditRow(row)
		if err != nil {
			if envelope.CodeOf(err) != envelope.CodeInvalidAuditRow {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		// Cross-check with an independent implementation: what the walker
		// accepts decodes, and re-encodes deterministically to itself.
		var v any
		if err := dm.Unmarshal(row, &v); err != nil {
			t.Fatalf("accepted a row fxamacker/cbor refuses: %v", err)
		}
		again, err := em.Marshal(v)
		if err != nil || !bytes.Equal(again, row) {
			t.Fatalf("accepted a row that is not deterministic: %x, re-encoded %x", row, again)
		}
	})
}

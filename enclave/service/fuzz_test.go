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
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// FuzzMethodParams sends arbitrary params to every method. Invariants: no
// panic, and every refusal is a typed *api.Error other than internal.
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
		map[string]any{"actor_omni": omni, "audience": "sts.amazonaws.com", "ttl": 60},
		map[string]any{},
	}
	// Typed data of every shape go-ethereum cannot encode, on both
	// typed-data methods (null in an array crashed the enclave once).
	for _, td := range typedShapes(f, mail.TypedData) {
		seeds = append(seeds, map[string]any{"actor_omni": omni, "typed_data": td}, map[string]any{"omni_account": omni, "typed_data": td})
	}
	// Params of the wrong shape.
	for _, v := range oddValues() {
		seeds = append(seeds, v, map[string]any{"actor_omni": v}, map[string]any{"omni_account": omni, "message_hex": v},
			map[string]any{"actor_omni": omni, "typed_data": v}, map[string]any{"actor_omni": omni, "audit_row": v})
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
		var e *api.Error
		if !errors.As(err, &e) || e.Code == api.CodeInternal {
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
	for _, c := range append([]json.RawMessage{mail.TypedData}, json.RawMessage(cases[0].v4()), json.RawMessage(cases[7].v4())) {
		for _, td := range typedShapes(f, c) {
			f.Add([]byte(td))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		start := time.Now()
		d, err := service.HashTypedData(raw)
		// Bounded in time too: a request's typed data is hashed in
		// milliseconds (the bound leaves room for a loaded machine).
		if took := time.Since(start); took > time.Second {
			t.Fatalf("hashing took %s", took)
		}
		if err == nil && len(d.Digest) != 32 {
			t.Fatal("digest is not 32 bytes")
		}
		if err != nil && api.CodeOf(err) != api.CodeInvalidTypedData {
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
			if api.CodeOf(err) != api.CodeInvalidAuditRow {
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

// oddValues are JSON values of every shape, for places that expect one.
func oddValues() []any {
	return []any{
		nil, []any{}, []any{nil}, []any{[]any{json.Number("1")}}, map[string]any{}, map[string]any{"v": nil},
		json.Number("1e400"), json.Number("1" + strings.Repeat("0", 90)), json.Number("-1"), json.Number("1.5"),
		json.Number("256"), json.Number("-129"), true, "", "0x", "0x01", "0x123", "0x-5", "1e3",
		"0x" + strings.Repeat("ab", 33), strings.Repeat("ab", 20), "0x" + strings.Repeat("AB", 20),
	}
}

// typedShapes returns typed data derived from raw in the shapes go-ethereum
// cannot encode: each message value replaced by every odd value (null, an
// array one level too deep, an object, numbers out of range, ...), each
// struct with a field missing and with one too many, each field's type
// made an array, an array of arrays, a fixed array and a reference to its
// own struct.
func typedShapes(tb testing.TB, raw json.RawMessage) []json.RawMessage {
	tb.Helper()
	decode := func() map[string]any {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			tb.Fatal(err)
		}
		return v
	}
	var out []json.RawMessage
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	// paths lists every value under v, as the keys and indexes that reach it.
	var paths func(v any, at []any) [][]any
	paths = func(v any, at []any) [][]any {
		var ps [][]any
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := append(append([]any{}, at...), k)
				ps = append(append(ps, p), paths(e, p)...)
			}
		case []any:
			for i, e := range x {
				p := append(append([]any{}, at...), i)
				ps = append(append(ps, p), paths(e, p)...)
			}
		}
		return ps
	}
	set := func(root any, p []any, f func(parent any, key any)) {
		v := root
		for _, k := range p[:len(p)-1] {
			switch x := v.(type) {
			case map[string]any:
				v = x[k.(string)]
			case []any:
				v = x[k.(int)]
			}
		}
		f(v, p[len(p)-1])
	}
	for _, p := range paths(decode()["message"], nil) {
		for _, odd := range append(oddValues(), "wrap", "drop", "extra") {
			td := decode()
			set(td["message"], p, func(parent, key any) {
				switch x := parent.(type) {
				case map[string]any:
					switch odd {
					case "wrap":
						x[key.(string)] = []any{x[key.(string)]}
					case "drop":
						delete(x, key.(string))
					case "extra":
						x["extra"] = x[key.(string)]
					default:
						x[key.(string)] = odd
					}
				case []any:
					switch odd {
					case "wrap", "extra":
						x[key.(int)] = []any{x[key.(int)]}
					case "drop":
						x[key.(int)] = nil
					default:
						x[key.(int)] = odd
					}
				}
			})
			add(td)
		}
	}
	types, _ := decode()["types"].(map[string]any)
	for name, fields := range types {
		list, _ := fields.([]any)
		for i := range list {
			for _, suffix := range []string{"[]", "[][]", "[2]", "self", "[]self"} {
				td := decode()
				field := td["types"].(map[string]any)[name].([]any)[i].(map[string]any)
				switch suffix {
				case "self":
					field["type"] = name
				case "[]self":
					field["type"] = name + "[]"
				default:
					field["type"] = field["type"].(string) + suffix
				}
				add(td)
			}
		}
	}
	return out
}

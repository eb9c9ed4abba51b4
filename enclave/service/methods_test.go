package service_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

func TestDeriveAddressEpochs(t *testing.T) {
	h := newHarness(t, nil)
	e1, e2, cur := h.wallet(1), h.wallet(2), h.wallet(0)
	if e1 == e2 || cur != e2 {
		t.Fatalf("epoch 1 %s, epoch 2 %s, current %s", e1, e2, cur)
	}
	wantCode(t, h.call("v1/derive-address", map[string]any{"operator_omni": omni, "k3_epoch": 3}, nil), api.CodeUnknownEpoch)
	wantCode(t, h.call("v1/derive-address", map[string]any{"operator_omni": omni, "k3_epoch": 0}, nil), api.CodeBadRequest)
	wantCode(t, h.call("v1/derive-address", map[string]any{"operator_omni": omni, "k3_epoch": -1}, nil), api.CodeBadRequest)
	wantCode(t, h.call("v1/derive-address", map[string]any{"operator_omni": "0x" + omni[2:]}, nil), api.CodeInvalidOmni)
	empty := service.New(service.Options{Keys: keyring.New()}).Methods(false)
	_, err := empty["v1/derive-address"](nil, &service.Request{Params: []byte(`{"operator_omni":"` + omni + `"}`)})
	wantCode(t, err, api.CodeSignerDisabled)
}

func TestDeriveCredKEKIsEncryptedToTheReplyKey(t *testing.T) {
	h := newHarness(t, nil)
	reply, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, epoch := range []uint32{1, 2} {
		raw, _ := json.Marshal(map[string]any{"operator_omni": omni, "k3_epoch": epoch})
		res, err := h.methods["v1/derive-cred-kek"](nil, &service.Request{Params: raw, ReplyKey: &jose.JSONWebKey{Key: &reply.PublicKey}})
		if err != nil {
			t.Fatal(err)
		}
		r := res.(*api.DeriveCredentialKEKResponse)
		jwe, err := jose.ParseEncryptedCompact(r.KEK, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatal(err)
		}
		kek, err := jwe.Decrypt(reply)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := hkdf.Key(sha256.New, bytes.Repeat([]byte{0x41 + byte(epoch)}, 32), []byte("agentkeys.kek-salt.v2"), "agentkeys.user.v1"+string(unhex(t, omni)), 32)
		if !bytes.Equal(kek, want) || r.Epoch != epoch {
			t.Fatalf("epoch %d: KEK differs from DESIGN §5.1", epoch)
		}
		if strings.Contains(r.KEK, hex.EncodeToString(want)) {
			t.Fatal("the JWE carries the KEK in the clear")
		}
	}
	wantCode(t, h.call("v1/derive-cred-kek", map[string]any{"operator_omni": omni, "k3_epoch": 1}, nil), api.CodeBadRequest)
	raw := []byte(`{"operator_omni":"` + omni + `"}`)
	_, err := h.methods["v1/derive-cred-kek"](nil, &service.Request{Params: raw, ReplyKey: &jose.JSONWebKey{Key: &reply.PublicKey}})
	wantCode(t, err, api.CodeBadRequest) // k3_epoch is required
}

func TestSignaturesRecoverToTheWallet(t *testing.T) {
	h := newHarness(t, nil)
	wallet := h.wallet(0)
	msg := []byte("hello")
	var dev api.DevSignMessageResponse
	if err := h.call("dev/sign-message", map[string]any{"omni_account": omni, "message_hex": hex.EncodeToString(msg)}, &dev); err != nil {
		t.Fatal(err)
	}
	if recoverAddress(t, service.PersonalHash(msg), dev.Signature) != wallet || dev.Address != wallet || dev.KeyVersion != 2 {
		t.Fatalf("sign-message %+v", dev)
	}
	siwe := "example.com wants you to sign in with your Ethereum account:\n" + checksummed(wallet) +
		"\n\n\nURI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: abcdefgh1\nIssued At: 2026-11-28T11:59:00Z"
	var s api.SignSIWEResponse
	if err := h.call("v1/sign/siwe", map[string]any{"actor_omni": omni, "siwe_message": siwe}, &s); err != nil {
		t.Fatal(err)
	}
	if recoverAddress(t, unhex(t, s.MessageHash), s.Signature) != wallet || !bytes.Equal(unhex(t, s.MessageHash), service.PersonalHash([]byte(siwe))) {
		t.Fatalf("siwe %+v", s)
	}
	em, _ := cbor.CoreDetEncOptions().EncMode()
	rowBytes, _ := em.Marshal(map[string]any{"actor": omni, "op": "read", "ts": 1764331200})
	var a api.SignAuditRowResponse
	if err := h.call("v1/sign/audit-row", map[string]any{"actor_omni": omni, "audit_row": hex.EncodeToString(rowBytes)}, &a); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unhex(t, a.RowHash), crypto.Keccak256(rowBytes)) || recoverAddress(t, service.PersonalHash(unhex(t, a.RowHash)), a.Signature) != wallet {
		t.Fatalf("audit row %+v", a)
	}
}

func checksummed(addr string) string {
	var b [20]byte
	hex.Decode(b[:], []byte(strings.TrimPrefix(addr, "0x")))
	return fmt.Sprint(commonAddress(b))
}

func TestAuditRowMustBeDeterministic(t *testing.T) {
	h := newHarness(t, nil)
	for name, row := range map[string]string{
		"bad_unsorted_keys":      "a2616202616101",     // {"b":2,"a":1}
		"bad_long_integer_head":  "a161611801",         // {"a": 1 encoded in two bytes}
		"bad_indefinite_map":     "bf616101ff",         // {_ "a":1}
		"bad_duplicate_key":      "a2616101616102",     // {"a":1,"a":2}
		"bad_tag":                "a16161c11a5f5e1000", // {"a": 1(…)}
		"bad_not_a_map":          "8101",               // [1]
		"bad_trailing_bytes":     "a1616101ff",
		"bad_not_hex":            "zz",
		"bad_empty":              "",
		"bad_float_not_shortest": "a16161fb3ff0000000000000", // 1.0 as float64
	} {
		t.Run(name, func(t *testing.T) {
			wantCode(t, h.call("v1/sign/audit-row", map[string]any{"actor_omni": omni, "audit_row": row}, nil), api.CodeInvalidAuditRow)
		})
	}
	em, _ := cbor.CoreDetEncOptions().EncMode()
	rich, _ := em.Marshal(map[string]any{"actor": omni, "n": -5, "big": uint64(1) << 40, "ok": true, "none": nil,
		"list": []any{1, "two", []byte{3}, map[string]any{"z": 1, "a": false}}, "bytes": make([]byte, 300)})
	for _, row := range []string{"0xa2616101616202", hex.EncodeToString(rich)} {
		if err := h.call("v1/sign/audit-row", map[string]any{"actor_omni": omni, "audit_row": row}, nil); err != nil {
			t.Fatalf("deterministic row %s refused: %v", row, err)
		}
	}
}

func TestVerifyK10(t *testing.T) {
	h := newHarness(t, nil)
	priv, _ := crypto.ToECDSA(bytes.Repeat([]byte{7}, 32))
	addr := crypto.PubkeyToAddress(priv.PublicKey)
	payload := []byte("device payload")
	sig, _ := crypto.Sign(service.PersonalHash(payload), priv)
	sig27 := append(bytes.Clone(sig[:64]), sig[64]+27)
	pub65 := hex.EncodeToString(crypto.FromECDSAPub(&priv.PublicKey))
	pub33 := hex.EncodeToString(crypto.CompressPubkey(&priv.PublicKey))
	dkh := hex.EncodeToString(crypto.Keccak256(addr.Bytes()))
	ok := func(p map[string]string) bool {
		t.Helper()
		var r api.VerifyDeviceSignatureResponse
		if err := h.call("v1/verify/k10-sig", p, &r); err != nil {
			t.Fatal(err)
		}
		return r.Valid
	}
	ph := hex.EncodeToString(payload)
	for name, p := range map[string]map[string]string{
		"pubkey_uncompressed": {"device_pubkey": pub65, "payload": ph, "sig": hex.EncodeToString(sig)},
		"pubkey_compressed":   {"device_pubkey": "0x" + pub33, "payload": ph, "sig": hex.EncodeToString(sig)},
		"key_hash":            {"device_key_hash": dkh, "payload": ph, "sig": hex.EncodeToString(sig)},
		"v_27_28":             {"device_key_hash": dkh, "payload": ph, "sig": "0x" + hex.EncodeToString(sig27)},
	} {
		if !ok(p) {
			t.Errorf("%s: valid false", name)
		}
	}
	other := hex.EncodeToString(crypto.Keccak256([]byte("another device")))
	for name, p := range map[string]map[string]string{
		"other_payload": {"device_key_hash": dkh, "payload": "00", "sig": hex.EncodeToString(sig)},
		"other_device":  {"device_key_hash": other, "payload": ph, "sig": hex.EncodeToString(sig)},
	} {
		if ok(p) {
			t.Errorf("%s: valid true", name)
		}
	}
	for name, p := range map[string]map[string]string{
		"bad_both_keys":      {"device_pubkey": pub65, "device_key_hash": dkh, "payload": ph, "sig": hex.EncodeToString(sig)},
		"bad_no_key":         {"payload": ph, "sig": hex.EncodeToString(sig)},
		"bad_sig_length":     {"device_key_hash": dkh, "payload": ph, "sig": hex.EncodeToString(sig[:64])},
		"bad_v":              {"device_key_hash": dkh, "payload": ph, "sig": hex.EncodeToString(append(bytes.Clone(sig[:64]), 5))},
		"bad_pubkey_point":   {"device_pubkey": "04" + strings.Repeat("00", 64), "payload": ph, "sig": hex.EncodeToString(sig)},
		"bad_key_hash_short": {"device_key_hash": dkh[:62], "payload": ph, "sig": hex.EncodeToString(sig)},
		"bad_payload_hex":    {"device_key_hash": dkh, "payload": "xyz", "sig": hex.EncodeToString(sig)},
	} {
		t.Run(name, func(t *testing.T) {
			wantCode(t, h.call("v1/verify/k10-sig", p, nil), api.CodeBadRequest)
		})
	}
}

func TestDeviceMethods(t *testing.T) {
	h := newHarness(t, nil)
	var d api.DevDeriveDeviceResponse
	if err := h.call("dev/derive-device", map[string]any{"actor_omni": omni}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Address == h.wallet(0) || d.KeyVersion != 2 {
		t.Fatalf("device %+v", d)
	}
	var addr [20]byte
	hex.Decode(addr[:], []byte(d.Address[2:]))
	if !bytes.Equal(unhex(t, d.DeviceKeyHash), crypto.Keccak256(addr[:])) {
		t.Fatal("device_key_hash is not keccak256 of the address")
	}
	popMsg := crypto.Keccak256([]byte("agentkeys-agent-pop:" + d.DeviceKeyHash))
	if recoverAddress(t, service.PersonalHash(popMsg), d.PopSig) != d.Address {
		t.Fatal("pop_sig does not recover to the device")
	}
	wantCode(t, h.call("dev/derive-device", map[string]any{"actor_omni": omni, "label": "agentkeys-evm-wallet"}, nil), api.CodeBadRequest)

	operator := strings.Repeat("ab", 32)
	params := map[string]any{"actor_omni": strings.ToUpper(omni), "operator_omni": operator, "service": "  GitHub.com ",
		"op": "read", "data_class": "credential", "client_nonce": "n0nce", "client_ts": 1764331200}
	var c api.DevSignDeviceCapPopResponse
	if err := h.call("dev/sign-device-cap-pop", params, &c); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("agentkeys-cap-pop:v1:%s:%s:%x:read:credential:n0nce:1764331200", operator, omni, crypto.Keccak256([]byte("github.com")))
	msg := crypto.Keccak256([]byte(text))
	// Pinned: the message for these inputs, so a change of format shows.
	if got := hex.EncodeToString(msg); got != capPopGolden {
		t.Fatalf("cap-pop message %s, pinned %s", got, capPopGolden)
	}
	if recoverAddress(t, service.PersonalHash(msg), c.Signature) != d.Address || c.DeviceKeyHash != d.DeviceKeyHash {
		t.Fatalf("cap-pop %+v does not recover to the device", c)
	}
	for _, field := range []string{"service", "op", "data_class", "client_nonce"} {
		bad := map[string]any{}
		for k, v := range params {
			bad[k] = v
		}
		bad[field] = "a:b"
		wantCode(t, h.call("dev/sign-device-cap-pop", bad, nil), api.CodeBadRequest)
	}
}

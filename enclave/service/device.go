package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// DeviceLabel is the derivation label of device keys; derive-device accepts
// no other.
const DeviceLabel = "agentkeys-k10-device"

// DevDeriveDeviceRequest is dev/derive-device's params.
type DevDeriveDeviceRequest struct {
	ActorOmni string `json:"actor_omni"`
	// Label, if given, must be DeviceLabel.
	Label string `json:"label,omitempty"`
}

// DevDeriveDeviceResponse is dev/derive-device's result.
type DevDeriveDeviceResponse struct {
	Address string `json:"address"`
	// DeviceKeyHash is keccak256 of the device address's 20 bytes.
	DeviceKeyHash string `json:"device_key_hash"`
	// PopSig is the device key's EIP-191 signature of the 32 bytes of
	// keccak256("agentkeys-agent-pop:" ‖ DeviceKeyHash as 0x hex).
	PopSig     string `json:"pop_sig"`
	KeyVersion uint32 `json:"key_version"`
}

// PopMessage is the 32-byte message a device key signs to prove possession.
func PopMessage(deviceKeyHash []byte) []byte {
	return crypto.Keccak256([]byte("agentkeys-agent-pop:" + hex0x(deviceKeyHash)))
}

func (s *Service) devDeriveDevice(_ context.Context, r *Request) (any, error) {
	var p DevDeriveDeviceRequest
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	o, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	if p.Label != "" && p.Label != DeviceLabel {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "label must be %q", DeviceLabel)
	}
	k, err := s.keys.Derive(keyring.Device, 0, o)
	if err != nil {
		return nil, keyError(err)
	}
	dkh := DeviceKeyHash(k.Address())
	sig, err := SignPersonal(k, PopMessage(dkh))
	if err != nil {
		return nil, err
	}
	return &DevDeriveDeviceResponse{Address: address(k), DeviceKeyHash: hex0x(dkh), PopSig: sig, KeyVersion: k.Epoch}, nil
}

// DevSignDeviceCapPopRequest is dev/sign-device-cap-pop's params.
type DevSignDeviceCapPopRequest struct {
	ActorOmni    string `json:"actor_omni"`
	OperatorOmni string `json:"operator_omni"`
	Service      string `json:"service"`
	Op           string `json:"op"`
	DataClass    string `json:"data_class"`
	ClientNonce  string `json:"client_nonce"`
	// ClientTS is the client's Unix time in seconds.
	ClientTS int64 `json:"client_ts"`
}

// DevSignDeviceCapPopResponse is dev/sign-device-cap-pop's result.
type DevSignDeviceCapPopResponse struct {
	Signature     string `json:"signature"`
	Address       string `json:"address"`
	DeviceKeyHash string `json:"device_key_hash"`
	KeyVersion    uint32 `json:"key_version"`
}

const maxCapField = 128

// CapPopMessage is the 32-byte message of a capability proof of possession:
// keccak256("agentkeys-cap-pop:v1:{operator}:{actor}:{service hash}:{op}:
// {data_class}:{nonce}:{ts}"), omnis lowercase hex without 0x, service hash
// the lowercase hex (without 0x) of keccak256 of the lowercased, trimmed
// service, ts in decimal.
func CapPopMessage(operator, actor keyring.Omni, service, op, dataClass, nonce string, ts int64) []byte {
	serviceHash := crypto.Keccak256([]byte(strings.ToLower(strings.TrimSpace(service))))
	text := fmt.Sprintf("agentkeys-cap-pop:v1:%s:%s:%x:%s:%s:%s:%s",
		operator, actor, serviceHash, op, dataClass, nonce, strconv.FormatInt(ts, 10))
	return crypto.Keccak256([]byte(text))
}

func (s *Service) devSignDeviceCapPop(_ context.Context, r *Request) (any, error) {
	var p DevSignDeviceCapPopRequest
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	actor, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	operator, err := parseOmni(p.OperatorOmni)
	if err != nil {
		return nil, err
	}
	for name, v := range map[string]string{"service": p.Service, "op": p.Op, "data_class": p.DataClass, "client_nonce": p.ClientNonce} {
		// A colon in a field would make two different requests sign the
		// same message.
		if v == "" || len(v) > maxCapField || strings.ContainsAny(v, ":\n") {
			return nil, envelope.Errorf(envelope.CodeBadRequest, "%s must be 1..%d characters without ':' or newline", name, maxCapField)
		}
	}
	if p.ClientTS <= 0 {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "client_ts must be positive Unix seconds")
	}
	k, err := s.keys.Derive(keyring.Device, 0, actor)
	if err != nil {
		return nil, keyError(err)
	}
	sig, err := SignPersonal(k, CapPopMessage(operator, actor, p.Service, p.Op, p.DataClass, p.ClientNonce, p.ClientTS))
	if err != nil {
		return nil, err
	}
	return &DevSignDeviceCapPopResponse{Signature: sig, Address: address(k), DeviceKeyHash: hex0x(DeviceKeyHash(k.Address())), KeyVersion: k.Epoch}, nil
}

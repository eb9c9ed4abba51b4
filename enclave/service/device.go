package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// DeviceLabel is the derivation label of device keys; derive-device accepts
// no other.
const DeviceLabel = "agentkeys-k10-device"

// PopMessage is the 32-byte message a device key signs to prove possession.
func PopMessage(deviceKeyHash []byte) []byte {
	return crypto.Keccak256([]byte("agentkeys-agent-pop:" + hex0x(deviceKeyHash)))
}

func (s *Service) devDeriveDevice(_ context.Context, r *Request, p *api.DevDeriveDeviceRequest) (*api.DevDeriveDeviceResponse, error) {
	o, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	if p.Label != "" && p.Label != DeviceLabel {
		return nil, api.Errorf(api.CodeBadRequest, "label must be %q", DeviceLabel)
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
	return &api.DevDeriveDeviceResponse{Address: address(k), DeviceKeyHash: hex0x(dkh), PopSig: sig, KeyVersion: k.Epoch}, nil
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

func (s *Service) devSignDeviceCapPop(_ context.Context, r *Request, p *api.DevSignDeviceCapPopRequest) (*api.DevSignDeviceCapPopResponse, error) {
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
			return nil, api.Errorf(api.CodeBadRequest, "%s must be 1..%d characters without ':' or newline", name, maxCapField)
		}
	}
	if p.ClientTS <= 0 {
		return nil, api.Errorf(api.CodeBadRequest, "client_ts must be positive Unix seconds")
	}
	k, err := s.keys.Derive(keyring.Device, 0, actor)
	if err != nil {
		return nil, keyError(err)
	}
	sig, err := SignPersonal(k, CapPopMessage(operator, actor, p.Service, p.Op, p.DataClass, p.ClientNonce, p.ClientTS))
	if err != nil {
		return nil, err
	}
	return &api.DevSignDeviceCapPopResponse{Signature: sig, Address: address(k), DeviceKeyHash: hex0x(DeviceKeyHash(k.Address())), KeyVersion: k.Epoch}, nil
}

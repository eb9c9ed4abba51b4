package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
)

func unhexParam(name, s string, max int) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) > 2*max {
		return nil, api.Errorf(api.CodeBadRequest, "%s longer than %d bytes", name, max)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "%s is not hex", name)
	}
	return b, nil
}

// DeviceKeyHash is keccak256 of an address's 20 bytes.
func DeviceKeyHash(a common.Address) []byte { return crypto.Keccak256(a.Bytes()) }

func (s *Service) verifyDeviceSignature(_ context.Context, r *Request, p *api.VerifyDeviceSignatureRequest) (*api.VerifyDeviceSignatureResponse, error) {
	if (p.DevicePubkey == "") == (p.DeviceKeyHash == "") {
		return nil, api.Errorf(api.CodeBadRequest, "give exactly one of device_pubkey and device_key_hash")
	}
	var matches func(common.Address) bool
	if p.DevicePubkey != "" {
		raw, err := unhexParam("device_pubkey", p.DevicePubkey, 65)
		if err != nil {
			return nil, err
		}
		var want common.Address
		switch len(raw) {
		case 65:
			pub, err := crypto.UnmarshalPubkey(raw)
			if err != nil {
				return nil, api.Errorf(api.CodeBadRequest, "device_pubkey is not a secp256k1 point")
			}
			want = crypto.PubkeyToAddress(*pub)
		case 33:
			pub, err := crypto.DecompressPubkey(raw)
			if err != nil {
				return nil, api.Errorf(api.CodeBadRequest, "device_pubkey is not a secp256k1 point")
			}
			want = crypto.PubkeyToAddress(*pub)
		default:
			return nil, api.Errorf(api.CodeBadRequest, "device_pubkey must be 33 or 65 bytes")
		}
		matches = func(a common.Address) bool { return a == want }
	} else {
		want, err := unhexParam("device_key_hash", p.DeviceKeyHash, 32)
		if err != nil {
			return nil, err
		}
		if len(want) != 32 {
			return nil, api.Errorf(api.CodeBadRequest, "device_key_hash must be 32 bytes")
		}
		matches = func(a common.Address) bool { return bytes.Equal(DeviceKeyHash(a), want) }
	}
	payload, err := unhexParam("payload", p.Payload, MaxMessage)
	if err != nil {
		return nil, err
	}
	sig, err := unhexParam("sig", p.Sig, 65)
	if err != nil {
		return nil, err
	}
	if len(sig) != 65 {
		return nil, api.Errorf(api.CodeBadRequest, "sig must be 65 bytes")
	}
	switch sig[64] {
	case 0, 1:
	case 27, 28:
		sig[64] -= 27
	default:
		return nil, api.Errorf(api.CodeBadRequest, "sig v must be 0, 1, 27 or 28")
	}
	pub, err := crypto.SigToPub(PersonalHash(payload), sig)
	if err != nil {
		return &api.VerifyDeviceSignatureResponse{Valid: false}, nil
	}
	got := crypto.PubkeyToAddress(*pub)
	return &api.VerifyDeviceSignatureResponse{Valid: matches(got), Address: strings.ToLower(got.Hex())}, nil
}

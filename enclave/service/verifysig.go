package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/envelope"
)

// VerifyK10Request is v1/verify/k10-sig's params: exactly one of
// DevicePubkey and DeviceKeyHash names the device.
type VerifyK10Request struct {
	// DevicePubkey is the device's secp256k1 key, 33 or 65 bytes, hex.
	DevicePubkey string `json:"device_pubkey,omitempty"`
	// DeviceKeyHash is keccak256 of the device's 20-byte address, hex.
	DeviceKeyHash string `json:"device_key_hash,omitempty"`
	// Payload is the signed message's bytes, hex; the signature is EIP-191
	// personal_sign over them.
	Payload string `json:"payload"`
	// Sig is r ‖ s ‖ v, 65 bytes hex, v ∈ {0, 1, 27, 28}.
	Sig string `json:"sig"`
}

// VerifyResponse answers a verification: Valid is false for a well-formed
// signature that does not match.
type VerifyResponse struct {
	Valid bool `json:"valid"`
	// Address is the address the signature recovers to ("" when it
	// recovers to none).
	Address string `json:"address"`
}

func unhexParam(name, s string, max int) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) > 2*max {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "%s longer than %d bytes", name, max)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "%s is not hex", name)
	}
	return b, nil
}

// DeviceKeyHash is keccak256 of an address's 20 bytes.
func DeviceKeyHash(a common.Address) []byte { return crypto.Keccak256(a.Bytes()) }

func (s *Service) verifyK10(_ context.Context, r *Request) (any, error) {
	var p VerifyK10Request
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	if (p.DevicePubkey == "") == (p.DeviceKeyHash == "") {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "give exactly one of device_pubkey and device_key_hash")
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
				return nil, envelope.Errorf(envelope.CodeBadRequest, "device_pubkey is not a secp256k1 point")
			}
			want = crypto.PubkeyToAddress(*pub)
		case 33:
			pub, err := crypto.DecompressPubkey(raw)
			if err != nil {
				return nil, envelope.Errorf(envelope.CodeBadRequest, "device_pubkey is not a secp256k1 point")
			}
			want = crypto.PubkeyToAddress(*pub)
		default:
			return nil, envelope.Errorf(envelope.CodeBadRequest, "device_pubkey must be 33 or 65 bytes")
		}
		matches = func(a common.Address) bool { return a == want }
	} else {
		want, err := unhexParam("device_key_hash", p.DeviceKeyHash, 32)
		if err != nil {
			return nil, err
		}
		if len(want) != 32 {
			return nil, envelope.Errorf(envelope.CodeBadRequest, "device_key_hash must be 32 bytes")
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
		return nil, envelope.Errorf(envelope.CodeBadRequest, "sig must be 65 bytes")
	}
	switch sig[64] {
	case 0, 1:
	case 27, 28:
		sig[64] -= 27
	default:
		return nil, envelope.Errorf(envelope.CodeBadRequest, "sig v must be 0, 1, 27 or 28")
	}
	pub, err := crypto.SigToPub(PersonalHash(payload), sig)
	if err != nil {
		return &VerifyResponse{Valid: false}, nil
	}
	got := crypto.PubkeyToAddress(*pub)
	return &VerifyResponse{Valid: matches(got), Address: strings.ToLower(got.Hex())}, nil
}

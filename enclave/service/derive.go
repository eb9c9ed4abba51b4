package service

import (
	"context"
	"encoding/hex"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// DeriveAddressRequest is v1/derive-address's params.
type DeriveAddressRequest struct {
	OperatorOmni string `json:"operator_omni"`
	// Epoch is the K3 epoch; absent means the current one.
	Epoch *uint32 `json:"k3_epoch,omitempty"`
}

// DeriveAddressResponse is v1/derive-address's result.
type DeriveAddressResponse struct {
	Address string `json:"address"`
	// PublicKey is the uncompressed secp256k1 key, 0x04 ‖ X ‖ Y, as 0x hex.
	PublicKey string `json:"public_key"`
	Epoch     uint32 `json:"k3_epoch"`
}

func (s *Service) deriveAddress(_ context.Context, r *Request) (any, error) {
	var p DeriveAddressRequest
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	o, err := parseOmni(p.OperatorOmni)
	if err != nil {
		return nil, err
	}
	var epoch uint32
	if p.Epoch != nil {
		if *p.Epoch == 0 {
			return nil, envelope.Errorf(envelope.CodeBadRequest, "k3_epoch starts at 1")
		}
		epoch = *p.Epoch
	}
	k, err := s.keys.Derive(keyring.Wallet, epoch, o)
	if err != nil {
		return nil, keyError(err)
	}
	pub := k.Public()
	return &DeriveAddressResponse{
		Address:   hex0x(pub.Address[:]),
		PublicKey: "0x" + hex.EncodeToString(pub.Uncompressed[:]),
		Epoch:     k.Epoch,
	}, nil
}

// address is the key's address as lowercase 0x hex (DESIGN §5.1).
func address(k *keyring.Key) string {
	a := k.Address()
	return hex0x(a[:])
}

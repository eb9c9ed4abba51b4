package service

import (
	"context"
	"encoding/hex"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

func (s *Service) deriveAddress(_ context.Context, r *Request, p *api.DeriveAddressRequest) (*api.DeriveAddressResponse, error) {
	o, err := parseOmni(p.OperatorOmni)
	if err != nil {
		return nil, err
	}
	var epoch uint32
	if p.Epoch != nil {
		if *p.Epoch == 0 {
			return nil, api.Errorf(api.CodeBadRequest, "k3_epoch starts at 1")
		}
		epoch = *p.Epoch
	}
	k, err := s.keys.Derive(keyring.Wallet, epoch, o)
	if err != nil {
		return nil, keyError(err)
	}
	pub := k.Public()
	return &api.DeriveAddressResponse{
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

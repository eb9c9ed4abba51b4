package service

import (
	"context"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
)

func (s *Service) deriveCredentialKEK(_ context.Context, r *Request, p *api.DeriveCredentialKEKRequest) (*api.DeriveCredentialKEKResponse, error) {
	o, err := parseOmni(p.OperatorOmni)
	if err != nil {
		return nil, err
	}
	if p.Epoch == 0 {
		return nil, api.Errorf(api.CodeBadRequest, "k3_epoch is required and starts at 1")
	}
	if r.ReplyKey == nil {
		return nil, api.Errorf(api.CodeBadRequest, "derive-cred-kek needs a reply_key to encrypt the KEK to")
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: r.ReplyKey.Key}, nil)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "reply_key cannot be encrypted to")
	}
	kek, epoch, err := s.keys.KEK(p.Epoch, o)
	if err != nil {
		return nil, keyError(err)
	}
	defer clear(kek)
	jwe, err := enc.Encrypt(kek)
	if err != nil {
		return nil, err
	}
	out, err := jwe.CompactSerialize()
	if err != nil {
		return nil, err
	}
	return &api.DeriveCredentialKEKResponse{KEK: out, Epoch: epoch}, nil
}

package service

import (
	"context"

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
	enc, err := replyEncrypter(r, "derive-cred-kek", "the KEK")
	if err != nil {
		return nil, err
	}
	kek, epoch, err := s.keys.KEK(p.Epoch, o)
	if err != nil {
		return nil, keyError(err)
	}
	defer clear(kek)
	out, err := sealToReply(enc, kek, "the KEK")
	if err != nil {
		return nil, err
	}
	return &api.DeriveCredentialKEKResponse{KEK: out, Epoch: epoch}, nil
}

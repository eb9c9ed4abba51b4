package service

import (
	"context"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/envelope"
)

// DeriveCredKEKRequest is v1/derive-cred-kek's params. The request must
// carry a reply_key: the KEK leaves the enclave only encrypted to it.
type DeriveCredKEKRequest struct {
	OperatorOmni string `json:"operator_omni"`
	Epoch        uint32 `json:"k3_epoch"`
}

// DeriveCredKEKResponse is v1/derive-cred-kek's result.
type DeriveCredKEKResponse struct {
	// KEK is a compact JWE (ECDH-ES, A256GCM) of the 32-byte KEK to the
	// request's reply_key.
	KEK   string `json:"kek_jwe"`
	Epoch uint32 `json:"k3_epoch"`
}

func (s *Service) deriveCredKEK(_ context.Context, r *Request) (any, error) {
	var p DeriveCredKEKRequest
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	o, err := parseOmni(p.OperatorOmni)
	if err != nil {
		return nil, err
	}
	if p.Epoch == 0 {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "k3_epoch is required and starts at 1")
	}
	if r.ReplyKey == nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "derive-cred-kek needs a reply_key to encrypt the KEK to")
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: r.ReplyKey.Key}, nil)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "reply_key cannot be encrypted to")
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
	return &DeriveCredKEKResponse{KEK: out, Epoch: epoch}, nil
}

package service

import (
	"context"
	"encoding/hex"
	"regexp"
	"strings"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// MaxMessage bounds a message to sign.
const MaxMessage = 16 << 10

func (s *Service) devDeriveAddress(_ context.Context, r *Request, p *api.DevDeriveAddressRequest) (*api.DevDeriveAddressResponse, error) {
	o, err := parseOmni(p.OmniAccount)
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Derive(keyring.Wallet, 0, o)
	if err != nil {
		return nil, keyError(err)
	}
	return &api.DevDeriveAddressResponse{Address: address(k), KeyVersion: k.Epoch}, nil
}

func (s *Service) devSignMessage(_ context.Context, r *Request, p *api.DevSignMessageRequest) (*api.DevSignMessageResponse, error) {
	o, err := parseOmni(p.OmniAccount)
	if err != nil {
		return nil, err
	}
	h := strings.TrimPrefix(strings.TrimPrefix(p.MessageHex, "0x"), "0X")
	if len(h) > 2*MaxMessage {
		return nil, api.Errorf(api.CodeInvalidMessageHex, "message longer than %d bytes", MaxMessage)
	}
	msg, err := hex.DecodeString(h)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidMessageHex, "message_hex is not hex")
	}
	k, err := s.keys.Derive(keyring.Wallet, 0, o)
	if err != nil {
		return nil, keyError(err)
	}
	if err := s.checkPersonalMessage(msg, k); err != nil {
		return nil, err
	}
	sig, err := SignPersonal(k, msg)
	if err != nil {
		return nil, err
	}
	return &api.DevSignMessageResponse{Signature: sig, Address: address(k), KeyVersion: k.Epoch}, nil
}

// siweHeader finds EIP-4361's header phrase however it is cased or spaced:
// what a lenient SIWE verifier might take for a sign-in message.
var siweHeader = regexp.MustCompile(`(?i)wants\s+you\s+to\s+sign\s+in\s+with\s+your\s+ethereum\s+account`)

// checkPersonalMessage holds a message dev/sign-message is asked to sign
// to v1/sign/siwe's rules when it looks like a sign-in message: both sign
// EIP-191 of the text with the same wallet key, so without this the
// compatibility surface would give the same signature without the checks.
// A message with the header phrase must parse exactly as EIP-4361 (else
// invalid_siwe_message: a lenient verifier might still read it as one) and
// pass the SIWE policy: the omni's wallet, within its validity, an allowed
// domain and chain id.
func (s *Service) checkPersonalMessage(msg []byte, k *keyring.Key) error {
	if !siweHeader.Match(msg) {
		return nil
	}
	m, err := CheckSIWE(string(msg))
	if err != nil {
		return err
	}
	return s.siwePolicy(m, k.Address())
}

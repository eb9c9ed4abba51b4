package service

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/siwe"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

func (s *Service) signSIWE(_ context.Context, r *Request, p *api.SignSIWERequest) (*api.SignSIWEResponse, error) {
	o, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	m, err := CheckSIWE(p.SIWEMessage)
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Derive(keyring.Wallet, 0, o)
	if err != nil {
		return nil, keyError(err)
	}
	if err := s.siwePolicy(m, k.Address()); err != nil {
		return nil, err
	}
	msg := []byte(p.SIWEMessage)
	sig, err := SignPersonal(k, msg)
	if err != nil {
		return nil, err
	}
	return &api.SignSIWEResponse{Signature: sig, Address: address(k), MessageHash: "0x" + hex.EncodeToString(PersonalHash(msg))}, nil
}

// CheckSIWE parses an EIP-4361 message (package siwe parses exactly, so
// what is checked is what is signed).
func CheckSIWE(text string) (*siwe.Message, error) {
	m, err := siwe.Parse(text)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidSIWE, "%v", err)
	}
	return m, nil
}

// siwePolicy applies the refusal rules: the message's address is the
// omni's wallet, the message is inside its validity, issued-at is not in the
// future beyond the skew, and the domain and chain id are allowed.
func (s *Service) siwePolicy(m *siwe.Message, wallet common.Address) error {
	now := s.clock()
	if m.Address != wallet {
		return api.Errorf(api.CodeAddressMismatch, "the message names %s, not this omni's wallet", strings.ToLower(m.Address.Hex()))
	}
	if m.ExpirationTime != nil && !now.Before(*m.ExpirationTime) {
		return api.Errorf(api.CodeMessageExpired, "expired at %s", m.ExpirationTime.Format(time.RFC3339))
	}
	if m.NotBefore != nil && now.Before(*m.NotBefore) {
		return api.Errorf(api.CodeMessageNotYetValid, "not valid before %s", m.NotBefore.Format(time.RFC3339))
	}
	if m.IssuedAt.After(now.Add(s.policy.skew)) {
		return api.Errorf(api.CodeIssuedInFuture, "issued at %s, in the future", m.IssuedAt.Format(time.RFC3339))
	}
	if !s.policy.allowDomain(m.Domain) {
		return api.Errorf(api.CodePolicyDenied, "domain %q is not allowed", text.Truncate(m.Domain))
	}
	if !s.policy.allowChain(m.ChainID) {
		return api.Errorf(api.CodePolicyDenied, "chain id %d is not allowed", m.ChainID)
	}
	return nil
}

package service

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/spruceid/siwe-go"

	"github.com/nitro-signer/nitro-signer/enclave/envelope"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// MaxSIWE bounds an EIP-4361 message.
const MaxSIWE = 8 << 10

// SignSIWERequest is v1/sign/siwe's params.
type SignSIWERequest struct {
	ActorOmni   string `json:"actor_omni"`
	SIWEMessage string `json:"siwe_message"`
}

// SignSIWEResponse is v1/sign/siwe's result.
type SignSIWEResponse struct {
	Signature string `json:"signature"`
	Address   string `json:"address"`
	// MessageHash is the EIP-191 hash that was signed.
	MessageHash string `json:"message_hash"`
}

func (s *Service) signSIWE(_ context.Context, r *Request) (any, error) {
	var p SignSIWERequest
	if err := decode(r, &p); err != nil {
		return nil, err
	}
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
	if err := s.siwePolicy(m, k); err != nil {
		return nil, err
	}
	msg := []byte(p.SIWEMessage)
	sig, err := SignPersonal(k, msg)
	if err != nil {
		return nil, err
	}
	return &SignSIWEResponse{Signature: sig, Address: address(k), MessageHash: "0x" + hex.EncodeToString(PersonalHash(msg))}, nil
}

// CheckSIWE parses an EIP-4361 message and insists it is in canonical form:
// rendering the parsed message gives back exactly the bytes received, so
// what is checked is what is signed.
func CheckSIWE(text string) (*siwe.Message, error) {
	if len(text) == 0 || len(text) > MaxSIWE {
		return nil, envelope.Errorf(envelope.CodeInvalidSIWE, "message of %d bytes, want 1..%d", len(text), MaxSIWE)
	}
	m, err := siwe.ParseMessage(text)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeInvalidSIWE, "%v", err)
	}
	if m.String() != text {
		return nil, envelope.Errorf(envelope.CodeInvalidSIWE, "message is not in the canonical EIP-4361 form")
	}
	if _, err := parseSIWETime(m.GetIssuedAt()); err != nil {
		return nil, envelope.Errorf(envelope.CodeInvalidSIWE, "issued-at: %v", err)
	}
	for name, v := range map[string]*string{"expiration-time": m.GetExpirationTime(), "not-before": m.GetNotBefore()} {
		if v != nil {
			if _, err := parseSIWETime(*v); err != nil {
				return nil, envelope.Errorf(envelope.CodeInvalidSIWE, "%s: %v", name, err)
			}
		}
	}
	return m, nil
}

func parseSIWETime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// siwePolicy applies the refusal rules: the message's address is the
// omni's wallet, the message is inside its validity, issued-at is not in the
// future beyond the skew, and the domain and chain id are allowed.
func (s *Service) siwePolicy(m *siwe.Message, k *keyring.Key) error {
	now := s.clock()
	if m.GetAddress() != k.Address() {
		return envelope.Errorf(envelope.CodeAddressMismatch, "the message names %s, not this omni's wallet", strings.ToLower(m.GetAddress().Hex()))
	}
	if exp := m.GetExpirationTime(); exp != nil {
		t, _ := parseSIWETime(*exp)
		if !now.Before(t) {
			return envelope.Errorf(envelope.CodeMessageExpired, "expired at %s", *exp)
		}
	}
	if nb := m.GetNotBefore(); nb != nil {
		t, _ := parseSIWETime(*nb)
		if now.Before(t) {
			return envelope.Errorf(envelope.CodeMessageNotYetValid, "not valid before %s", *nb)
		}
	}
	issued, _ := parseSIWETime(m.GetIssuedAt())
	if issued.After(now.Add(s.policy.skew)) {
		return envelope.Errorf(envelope.CodeIssuedInFuture, "issued at %s, in the future", m.GetIssuedAt())
	}
	if !s.policy.allowDomain(m.GetDomain()) {
		return envelope.Errorf(envelope.CodePolicyDenied, "domain %q is not allowed", truncate(m.GetDomain()))
	}
	if id := m.GetChainID(); id < 0 || !s.policy.allowChain(uint64(id)) {
		return envelope.Errorf(envelope.CodePolicyDenied, "chain id %d is not allowed", id)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

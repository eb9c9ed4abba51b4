package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

// Bounds on EIP-712 typed data.
const (
	MaxTypedData     = 32 << 10
	maxTypes         = 64
	maxFieldsPerType = 64
	maxTypeName      = 64
	// maxArrayDims bounds the dimensions of one field's type, and
	// maxFixedArray the length a fixed-size array may declare.
	maxArrayDims  = 8
	maxFixedArray = 1024
	// maxStructValues bounds the struct values in a message and its
	// domain, and maxTypedWork their number times the types and fields
	// declared: go-ethereum re-validates every type for each of them.
	maxStructValues = 1024
	maxTypedWork    = 1 << 15
)

// TypedDigest is the result of hashing typed data.
type TypedDigest struct {
	Digest, DomainSeparator, PrimaryTypeHash []byte
	ChainID                                  *big.Int
	VerifyingContract                        string
}

// HashTypedData parses eth_signTypedData_v4 JSON strictly and hashes it as
// EIP-712 does. When types lack EIP712Domain it is built from the domain's
// fields in the canonical order (name, version, chainId, verifyingContract,
// salt), as ethers does. Integers given as JSON numbers are taken exactly,
// never through float64.
func HashTypedData(raw []byte) (*TypedDigest, error) {
	bad := func(format string, args ...any) error {
		return api.Errorf(api.CodeInvalidTypedData, format, args...)
	}
	if len(raw) == 0 || len(raw) > MaxTypedData {
		return nil, bad("typed_data of %d bytes, want 1..%d", len(raw), MaxTypedData)
	}
	var wire struct {
		Types       apitypes.Types  `json:"types"`
		PrimaryType string          `json:"primaryType"`
		Domain      json.RawMessage `json:"domain"`
		Message     json.RawMessage `json:"message"`
	}
	if err := strictjson.Decode(raw, &wire, MaxTypedData); err != nil {
		return nil, bad("%v", err)
	}
	domain, err := decodeDomain(wire.Domain)
	if err != nil {
		return nil, bad("domain: %v", err)
	}
	if len(wire.Types) > maxTypes {
		return nil, bad("%d types, limit %d", len(wire.Types), maxTypes)
	}
	for name, fields := range wire.Types {
		if len(name) > maxTypeName || len(fields) > maxFieldsPerType {
			return nil, bad("type %q too large", text.Truncate(name))
		}
	}
	if _, ok := wire.Types[wire.PrimaryType]; !ok || wire.PrimaryType == "EIP712Domain" {
		return nil, bad("primaryType %q is not a defined type", text.Truncate(wire.PrimaryType))
	}
	if _, ok := wire.Types["EIP712Domain"]; !ok {
		wire.Types["EIP712Domain"] = domainType(domain)
	}
	check, err := checkTypes(wire.Types)
	if err != nil {
		return nil, bad("types: %v", err)
	}
	message, err := decodeMessage(wire.Message)
	if err != nil {
		return nil, bad("message: %v", err)
	}
	// Nothing reaches go-ethereum that has not been checked against its
	// type (typedcheck.go).
	if err := check.checkStruct("EIP712Domain", domain.Map()); err != nil {
		return nil, bad("domain: %v", err)
	}
	if err := check.checkStruct(wire.PrimaryType, message); err != nil {
		return nil, bad("message: %v", err)
	}
	td := apitypes.TypedData{Types: wire.Types, PrimaryType: wire.PrimaryType, Domain: *domain, Message: message}
	domainSep, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		return nil, bad("domain: %v", err)
	}
	primary, err := td.HashStruct(td.PrimaryType, td.Message)
	if err != nil {
		return nil, bad("message: %v", err)
	}
	digest, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return nil, bad("%v", err)
	}
	out := &TypedDigest{Digest: digest, DomainSeparator: domainSep, PrimaryTypeHash: primary, VerifyingContract: td.Domain.VerifyingContract}
	if td.Domain.ChainId != nil {
		out.ChainID = (*big.Int)(td.Domain.ChainId)
	}
	return out, nil
}

// decodeDomain decodes the EIP-712 domain strictly and refuses a field
// given as "": go-ethereum decodes it as absent (TypedDataDomain.Map leaves
// it out) and ethers hashes it as present, so the enclave would sign a
// digest the caller's library does not compute. Only the domain object,
// a few hundred bytes, is read twice.
func decodeDomain(raw json.RawMessage) (*apitypes.TypedDataDomain, error) {
	var d apitypes.TypedDataDomain
	if len(raw) == 0 {
		return &d, nil
	}
	if err := strictjson.Decode(raw, &d, MaxTypedData); err != nil {
		return nil, err
	}
	if d.Name != "" && d.Version != "" && d.VerifyingContract != "" && d.Salt != "" {
		return &d, nil // nothing absent, so nothing given as ""
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(raw, &present); err != nil {
		return nil, err
	}
	for _, name := range []string{"name", "version", "verifyingContract", "salt"} {
		if v, ok := present[name]; ok && string(v) == `""` {
			return nil, fmt.Errorf("%s is the empty string: leave it out instead", name)
		}
	}
	return &d, nil
}

func domainType(d *apitypes.TypedDataDomain) []apitypes.Type {
	var t []apitypes.Type
	if d.Name != "" {
		t = append(t, apitypes.Type{Name: "name", Type: "string"})
	}
	if d.Version != "" {
		t = append(t, apitypes.Type{Name: "version", Type: "string"})
	}
	if d.ChainId != nil {
		t = append(t, apitypes.Type{Name: "chainId", Type: "uint256"})
	}
	if d.VerifyingContract != "" {
		t = append(t, apitypes.Type{Name: "verifyingContract", Type: "address"})
	}
	if d.Salt != "" {
		t = append(t, apitypes.Type{Name: "salt", Type: "bytes32"})
	}
	return t
}

// decodeMessage decodes the message object keeping integers exact: a JSON
// integer becomes a *big.Int, anything else with a fraction or exponent a
// float64 (accepted only when it is an exact integer), and a number float64
// cannot hold stays a json.Number, which no type accepts.
func decodeMessage(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return convertNumbers(m).(map[string]any), nil
}

func convertNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = convertNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = convertNumbers(e)
		}
		return x
	case json.Number:
		if b, ok := new(big.Int).SetString(string(x), 10); ok {
			return b
		}
		f, err := x.Float64()
		if err != nil {
			return x // refused by the check: a number, but no integer
		}
		return f
	}
	return v
}

// checkTypedPolicy applies the chain id and verifying contract allowlists.
func (s *Service) checkTypedPolicy(d *TypedDigest) error {
	if s.policy.chains != nil {
		if d.ChainID == nil || !d.ChainID.IsUint64() || !s.policy.allowChain(d.ChainID.Uint64()) {
			return api.Errorf(api.CodePolicyDenied, "chain id %v is not allowed", d.ChainID)
		}
	}
	if s.policy.contracts != nil && !s.policy.allowContract(d.VerifyingContract) {
		return api.Errorf(api.CodePolicyDenied, "verifying contract %q is not allowed", text.Truncate(d.VerifyingContract))
	}
	return nil
}

func (s *Service) typedData(actor string, raw json.RawMessage) (*api.SignTypedDataResponse, *keyring.Key, error) {
	o, err := parseOmni(actor)
	if err != nil {
		return nil, nil, err
	}
	d, err := HashTypedData(raw)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkTypedPolicy(d); err != nil {
		return nil, nil, err
	}
	k, err := s.keys.Derive(keyring.Wallet, 0, o)
	if err != nil {
		return nil, nil, keyError(err)
	}
	sig, err := signHash(k, d.Digest)
	if err != nil {
		return nil, nil, err
	}
	return &api.SignTypedDataResponse{
		Signature: sig, Address: address(k), Digest: hex0x(d.Digest),
		DomainSeparator: hex0x(d.DomainSeparator), PrimaryTypeHash: hex0x(d.PrimaryTypeHash),
	}, k, nil
}

func (s *Service) signTypedData(_ context.Context, r *Request, p *api.SignTypedDataRequest) (*api.SignTypedDataResponse, error) {
	resp, _, err := s.typedData(p.ActorOmni, p.TypedData)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Service) devSignTypedData(_ context.Context, r *Request, p *api.DevSignTypedDataRequest) (*api.DevSignTypedDataResponse, error) {
	resp, k, err := s.typedData(p.OmniAccount, p.TypedData)
	if err != nil {
		return nil, err
	}
	return &api.DevSignTypedDataResponse{SignTypedDataResponse: *resp, KeyVersion: k.Epoch}, nil
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

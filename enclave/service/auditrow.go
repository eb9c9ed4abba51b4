package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/enclave/envelope"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// MaxAuditRow bounds an audit row's CBOR bytes.
const MaxAuditRow = 16 << 10

// SignAuditRowRequest is v1/sign/audit-row's params.
type SignAuditRowRequest struct {
	ActorOmni string `json:"actor_omni"`
	// AuditRow is the row's deterministic CBOR as hex (0x optional).
	AuditRow string `json:"audit_row"`
}

// SignAuditRowResponse is v1/sign/audit-row's result.
type SignAuditRowResponse struct {
	// RowHash is keccak256 of the row's bytes.
	RowHash string `json:"row_hash"`
	// Signature is the EIP-191 personal_sign signature of the 32 bytes of
	// RowHash by the actor's wallet.
	Signature string `json:"signature"`
	Address   string `json:"address"`
}

var (
	rowDecMode = func() cbor.DecMode {
		dm, err := cbor.DecOptions{
			DupMapKey:        cbor.DupMapKeyEnforcedAPF,
			IndefLength:      cbor.IndefLengthForbidden,
			TagsMd:           cbor.TagsForbidden,
			MaxNestedLevels:  8,
			MaxArrayElements: 1024,
			MaxMapPairs:      256,
			UTF8:             cbor.UTF8RejectInvalid,
		}.DecMode()
		if err != nil {
			panic(err) // constant options
		}
		return dm
	}()
	rowEncMode = func() cbor.EncMode {
		em, err := cbor.CoreDetEncOptions().EncMode()
		if err != nil {
			panic(err) // constant options
		}
		return em
	}()
)

// CheckAuditRow accepts only a CBOR map in the core deterministic encoding
// of RFC 8949 §4.2.1: decoding it and encoding the value deterministically
// must give back the same bytes (shortest heads, sorted keys, definite
// lengths, no duplicate keys, no tags).
func CheckAuditRow(row []byte) error {
	if len(row) == 0 || len(row) > MaxAuditRow {
		return envelope.Errorf(envelope.CodeInvalidAuditRow, "row of %d bytes, want 1..%d", len(row), MaxAuditRow)
	}
	if row[0]>>5 != 5 {
		return envelope.Errorf(envelope.CodeInvalidAuditRow, "row is not a CBOR map")
	}
	var v any
	if err := rowDecMode.Unmarshal(row, &v); err != nil {
		return envelope.Errorf(envelope.CodeInvalidAuditRow, "%v", err)
	}
	again, err := rowEncMode.Marshal(v)
	if err != nil || !bytes.Equal(again, row) {
		return envelope.Errorf(envelope.CodeInvalidAuditRow, "row is not in deterministic CBOR encoding")
	}
	return nil
}

func (s *Service) signAuditRow(_ context.Context, r *Request) (any, error) {
	var p SignAuditRowRequest
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	o, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	h := strings.TrimPrefix(p.AuditRow, "0x")
	if len(h) > 2*MaxAuditRow {
		return nil, envelope.Errorf(envelope.CodeInvalidAuditRow, "row longer than %d bytes", MaxAuditRow)
	}
	row, err := hex.DecodeString(h)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeInvalidAuditRow, "audit_row is not hex")
	}
	if err := CheckAuditRow(row); err != nil {
		return nil, err
	}
	k, err := s.keys.Derive(keyring.Wallet, 0, o)
	if err != nil {
		return nil, keyError(err)
	}
	hash := crypto.Keccak256(row)
	sig, err := SignPersonal(k, hash)
	if err != nil {
		return nil, err
	}
	return &SignAuditRowResponse{RowHash: hex0x(hash), Signature: sig, Address: address(k)}, nil
}

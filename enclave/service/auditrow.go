package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// MaxAuditRow bounds an audit row's CBOR bytes.
const MaxAuditRow = 16 << 10

// maxRowDepth bounds nesting in an audit row.
const maxRowDepth = 8

// CheckAuditRow accepts only a CBOR map in the core deterministic encoding
// of RFC 8949 §4.2.1, restricted to what an audit row needs: integers, byte
// and text strings, arrays, maps, false, true and null — no tags, no floats,
// no indefinite lengths; map keys are integers or strings. Every head must be in its shortest form and map
// keys must be strictly increasing in the bytewise order of their encodings
// (so no duplicates). It walks the bytes once without building values.
func CheckAuditRow(row []byte) error {
	if len(row) == 0 || len(row) > MaxAuditRow {
		return api.Errorf(api.CodeInvalidAuditRow, "row of %d bytes, want 1..%d", len(row), MaxAuditRow)
	}
	if row[0]>>5 != 5 {
		return api.Errorf(api.CodeInvalidAuditRow, "row is not a CBOR map")
	}
	end, err := detItem(row, 0, 0)
	if err != nil {
		return api.Errorf(api.CodeInvalidAuditRow, "%v", err)
	}
	if end != len(row) {
		return api.Errorf(api.CodeInvalidAuditRow, "%d bytes after the row", len(row)-end)
	}
	return nil
}

var errRowTruncated = errors.New("row ends inside an item")

// detHead reads the head at b[i:] and returns the major type, the argument
// and the position after the head, refusing non-shortest and indefinite
// forms.
func detHead(b []byte, i int) (major byte, arg uint64, next int, err error) {
	if i >= len(b) {
		return 0, 0, 0, errRowTruncated
	}
	major, ai := b[i]>>5, b[i]&0x1f
	i++
	switch {
	case ai < 24:
		return major, uint64(ai), i, nil
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(b)-i < n {
			return 0, 0, 0, errRowTruncated
		}
		for _, c := range b[i : i+n] {
			arg = arg<<8 | uint64(c)
		}
		if major == 7 {
			return major, arg, i + n, nil // floats: refused by the caller
		}
		var min uint64 = 24
		if n > 1 {
			min = 1 << (8 * (n / 2))
		}
		if arg < min {
			return 0, 0, 0, fmt.Errorf("head at byte %d is not in its shortest form", i-1)
		}
		return major, arg, i + n, nil
	case ai == 31:
		return 0, 0, 0, fmt.Errorf("indefinite length at byte %d", i-1)
	}
	return 0, 0, 0, fmt.Errorf("reserved head at byte %d", i-1)
}

// detItem checks the item at b[i:] and returns the position after it.
func detItem(b []byte, i, depth int) (int, error) {
	if depth > maxRowDepth {
		return 0, fmt.Errorf("nested deeper than %d", maxRowDepth)
	}
	start := i
	major, arg, i, err := detHead(b, i)
	if err != nil {
		return 0, err
	}
	switch major {
	case 0:
		return i, nil
	case 1:
		if arg >= 1<<63 {
			return 0, fmt.Errorf("negative integer at byte %d below -2^63", start)
		}
		return i, nil
	case 2, 3:
		if arg > uint64(len(b)-i) {
			return 0, errRowTruncated
		}
		if major == 3 && !utf8.Valid(b[i:i+int(arg)]) {
			return 0, fmt.Errorf("text at byte %d is not UTF-8", start)
		}
		return i + int(arg), nil
	case 4:
		if arg > uint64(len(b)-i) { // every item takes at least a byte
			return 0, errRowTruncated
		}
		for range arg {
			if i, err = detItem(b, i, depth+1); err != nil {
				return 0, err
			}
		}
		return i, nil
	case 5:
		if arg > uint64(len(b)-i)/2 {
			return 0, errRowTruncated
		}
		var prev []byte
		for range arg {
			keyStart := i
			if i < len(b) && b[i]>>5 > 3 {
				return 0, fmt.Errorf("map key at byte %d is not an integer or a string", i)
			}
			if i, err = detItem(b, i, depth+1); err != nil {
				return 0, err
			}
			key := b[keyStart:i]
			if prev != nil && bytes.Compare(prev, key) >= 0 {
				return 0, fmt.Errorf("map keys at byte %d are not in strictly increasing order", keyStart)
			}
			prev = key
			if i, err = detItem(b, i, depth+1); err != nil {
				return 0, err
			}
		}
		return i, nil
	case 6:
		return 0, fmt.Errorf("tag at byte %d", start)
	default: // 7
		if b[start] == 0xf4 || b[start] == 0xf5 || b[start] == 0xf6 {
			return i, nil
		}
		return 0, fmt.Errorf("simple value or float at byte %d: only false, true and null", start)
	}
}

func (s *Service) signAuditRow(_ context.Context, r *Request, p *api.SignAuditRowRequest) (*api.SignAuditRowResponse, error) {
	o, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	h := strings.TrimPrefix(p.AuditRow, "0x")
	if len(h) > 2*MaxAuditRow {
		return nil, api.Errorf(api.CodeInvalidAuditRow, "row longer than %d bytes", MaxAuditRow)
	}
	row, err := hex.DecodeString(h)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidAuditRow, "audit_row is not hex")
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
	return &api.SignAuditRowResponse{RowHash: hex0x(hash), Signature: sig, Address: address(k)}, nil
}

package hostproto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A state/put body names the sequence it writes: the enclave chooses it,
// and the store writes it only if that sequence is not stored yet (S3's
// If-None-Match: *, a hard link for the directory store). Exactly one
// writer wins each sequence, so replicas sharing a store keep one lineage.
//
//	sequence (8 bytes, big endian, > 0) ‖ sealed keyring (1..MaxBlob bytes)
const putHeader = 8

// StatusExists is a state/put reply's status when the sequence is already
// stored (HTTP's and S3's 412 Precondition Failed). Nothing was written.
const StatusExists = 412

// ErrMalformedPut: a state/put body is not a sequence and a sealed keyring
// within the bounds.
var ErrMalformedPut = errors.New("hostproto: malformed state/put body")

// EncodePut is the body of a state/put call.
func EncodePut(seq uint64, sealed []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, putHeader+len(sealed)), seq), sealed...)
}

// DecodePut reads a state/put body. The sealed bytes alias b.
func DecodePut(b []byte) (uint64, []byte, error) {
	if len(b) <= putHeader {
		return 0, nil, fmt.Errorf("%w: %d bytes, want a sequence and a sealed keyring", ErrMalformedPut, len(b))
	}
	seq := binary.BigEndian.Uint64(b)
	switch {
	case seq == 0:
		return 0, nil, fmt.Errorf("%w: sequence 0", ErrMalformedPut)
	case len(b)-putHeader > MaxBlob:
		return 0, nil, fmt.Errorf("%w: sealed keyring of %d bytes, over %d", ErrMalformedPut, len(b)-putHeader, MaxBlob)
	}
	return seq, b[putHeader:], nil
}

// Package nsm is the enclave's view of the Nitro Secure Module: attestation
// documents, random bytes and PCR descriptions.
//
// Two implementations exist. [OpenDevice] talks to /dev/nsm through
// github.com/hf/nsm and is the only one in production builds. The simulator
// in package nsmsim compiles only under the nsmsim build tag, which the
// production image never sets; the enclave binary picks one at compile time,
// never by probing the device at run time.
package nsm

import (
	"errors"
	"fmt"
)

// Module is what the enclave needs of an NSM.
type Module interface {
	// Attest returns a signed attestation document (an untagged
	// COSE_Sign1) binding the given fields.
	Attest(req AttestRequest) ([]byte, error)
	// Read fills p with random bytes from the module.
	Read(p []byte) (int, error)
	// DescribePCR returns a PCR's current value and whether it is locked.
	DescribePCR(index int) (PCR, error)
	// Close releases the module.
	Close() error
}

// AttestRequest carries the caller-chosen fields of a document. Nil fields
// are absent from the document.
type AttestRequest struct {
	UserData  []byte
	Nonce     []byte
	PublicKey []byte
}

// PCR is a platform configuration register as the NSM describes it.
type PCR struct {
	Value  []byte
	Locked bool
}

// Bounds of the NSM API (aws-nitro-enclaves-nsm-api).
const (
	MaxUserData  = 512
	MaxNonce     = 512
	MaxPublicKey = 1024
	MaxPCRIndex  = 31
)

// ErrRequest is returned for a request the NSM would refuse.
var ErrRequest = errors.New("nsm: invalid request")

// Validate checks a request against the NSM's bounds.
func (r AttestRequest) Validate() error {
	switch {
	case len(r.UserData) > MaxUserData:
		return fmt.Errorf("%w: user_data is %d bytes, limit %d", ErrRequest, len(r.UserData), MaxUserData)
	case len(r.Nonce) > MaxNonce:
		return fmt.Errorf("%w: nonce is %d bytes, limit %d", ErrRequest, len(r.Nonce), MaxNonce)
	case len(r.PublicKey) > MaxPublicKey:
		return fmt.Errorf("%w: public_key is %d bytes, limit %d", ErrRequest, len(r.PublicKey), MaxPublicKey)
	}
	return nil
}

// ValidatePCRIndex checks a PCR index.
func ValidatePCRIndex(index int) error {
	if index < 0 || index > MaxPCRIndex {
		return fmt.Errorf("%w: PCR index %d", ErrRequest, index)
	}
	return nil
}

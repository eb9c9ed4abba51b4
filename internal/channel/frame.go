package channel

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nitro-signer/nitro-signer/internal/strictcbor"
)

// Frame types.
const (
	TypeCall  = 1
	TypeReply = 2
)

// Routes the enclave's channel carries besides methods: the parent relays
// GET /v1/attestation?nonce= as RouteAttestation with the nonce's bytes as
// the body, and /readyz as RouteReady.
const (
	RouteAttestation = "attestation"
	RouteReady       = "ready"
)

// Frame is one message on the channel. A call has Route, Body, Chain and
// TimeoutMS; a reply has Status and Body.
type Frame struct {
	Type uint8  `cbor:"1,keyasint"`
	ID   uint64 `cbor:"2,keyasint"`
	// Route names what is called: "v1/<method>", "dev/<method>",
	// "attestation" or "ready".
	Route string `cbor:"3,keyasint,omitempty"`
	// Body is the request envelope (a call) or the response (a reply).
	Body []byte `cbor:"4,keyasint,omitempty"`
	// Chain is the caller's TLS certificate chain, leaf first, as the
	// parent received it in the handshake.
	Chain [][]byte `cbor:"5,keyasint,omitempty"`
	// TimeoutMS is the call's deadline, relative to its arrival.
	TimeoutMS uint32 `cbor:"6,keyasint,omitempty"`
	// Status is the reply's HTTP status.
	Status uint16 `cbor:"7,keyasint,omitempty"`
}

// ErrFrame marks a frame that breaks the protocol.
var ErrFrame = errors.New("channel: malformed frame")

var decMode = strictcbor.Dec

// frameHead is what a frame refused unread is decoded for: its type and ID,
// to answer it. The body and chain are skipped, not copied.
type frameHead struct {
	Type uint8  `cbor:"1,keyasint"`
	ID   uint64 `cbor:"2,keyasint"`
}

// headMode decodes a frameHead: as decMode does, but the fields frameHead
// lacks are skipped rather than refused.
var headMode = strictcbor.DecHead

// Validate checks a decoded frame's fields against the protocol's bounds.
func (f *Frame) Validate() error {
	if len(f.Body) > MaxBody {
		return fmt.Errorf("%w: body of %d bytes", ErrFrame, len(f.Body))
	}
	switch f.Type {
	case TypeCall:
		if f.Route == "" || len(f.Route) > MaxRoute {
			return fmt.Errorf("%w: route of %d bytes", ErrFrame, len(f.Route))
		}
		if len(f.Chain) > MaxChain {
			return fmt.Errorf("%w: chain of %d certificates", ErrFrame, len(f.Chain))
		}
		for _, c := range f.Chain {
			if len(c) == 0 || len(c) > MaxCertificate {
				return fmt.Errorf("%w: certificate of %d bytes", ErrFrame, len(c))
			}
		}
		if f.Status != 0 {
			return fmt.Errorf("%w: call with a status", ErrFrame)
		}
	case TypeReply:
		if f.Status < 100 || f.Status > 599 {
			return fmt.Errorf("%w: status %d", ErrFrame, f.Status)
		}
		if f.Route != "" || f.Chain != nil || f.TimeoutMS != 0 {
			return fmt.Errorf("%w: reply with call fields", ErrFrame)
		}
	default:
		return fmt.Errorf("%w: type %d", ErrFrame, f.Type)
	}
	return nil
}

// Unmarshal decodes and validates one frame's CBOR bytes.
func Unmarshal(b []byte) (*Frame, error) {
	var f Frame
	if err := decMode.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFrame, err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// AppendFrame appends f, length prefix included, to dst.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // length, filled in below
	dst = f.appendCBOR(dst)
	n := len(dst) - start - 4
	if n > MaxFrame {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrFrame, n)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// appendCBOR writes the frame as the core deterministic encoding of its
// struct would (integer keys ascending, shortest heads, empty fields
// omitted), without reflection: frames are encoded on every call, and a
// reflective encoder grows each request goroutine's stack.
// TestAppendFrameMatchesCBOR holds it to fxamacker/cbor's output.
func (f *Frame) appendCBOR(dst []byte) []byte {
	n := 2
	for _, present := range []bool{f.Route != "", len(f.Body) > 0, len(f.Chain) > 0, f.TimeoutMS != 0, f.Status != 0} {
		if present {
			n++
		}
	}
	dst = appendHead(dst, majorMap, uint64(n))
	dst = appendHead(append(dst, 1), majorUint, uint64(f.Type))
	dst = appendHead(append(dst, 2), majorUint, f.ID)
	if f.Route != "" {
		dst = append(appendHead(append(dst, 3), majorText, uint64(len(f.Route))), f.Route...)
	}
	if len(f.Body) > 0 {
		dst = append(appendHead(append(dst, 4), majorBytes, uint64(len(f.Body))), f.Body...)
	}
	if len(f.Chain) > 0 {
		dst = appendHead(append(dst, 5), majorArray, uint64(len(f.Chain)))
		for _, c := range f.Chain {
			dst = append(appendHead(dst, majorBytes, uint64(len(c))), c...)
		}
	}
	if f.TimeoutMS != 0 {
		dst = appendHead(append(dst, 6), majorUint, uint64(f.TimeoutMS))
	}
	if f.Status != 0 {
		dst = appendHead(append(dst, 7), majorUint, uint64(f.Status))
	}
	return dst
}

// CBOR major types, shifted into place.
const (
	majorUint  = 0 << 5
	majorBytes = 2 << 5
	majorText  = 3 << 5
	majorArray = 4 << 5
	majorMap   = 5 << 5
)

// appendHead writes a CBOR head with the shortest argument.
func appendHead(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major|byte(n))
	case n <= 0xff:
		return append(dst, major|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, major|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(dst, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, major|27), n)
}

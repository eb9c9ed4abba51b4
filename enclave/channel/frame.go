package channel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/nitro-signer/nitro-signer/enclave/internal/strictcbor"
)

// Frame types.
const (
	TypeCall  = 1
	TypeReply = 2
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

var (
	encMode = strictcbor.Enc
	decMode = strictcbor.Dec
)

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
	b, err := encMode.Marshal(f)
	if err != nil {
		return dst, fmt.Errorf("channel: encoding frame: %w", err)
	}
	if len(b) > MaxFrame {
		return dst, fmt.Errorf("%w: %d bytes", ErrFrame, len(b))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...), nil
}

// ReadFrame reads one frame. buf is reused when large enough.
func ReadFrame(r io.Reader, buf []byte) (*Frame, []byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, buf, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n == 0 || n > MaxFrame {
		return nil, buf, fmt.Errorf("%w: length %d", ErrFrame, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, buf, err
	}
	f, err := Unmarshal(buf)
	return f, buf, err
}

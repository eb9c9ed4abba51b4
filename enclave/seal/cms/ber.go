package cms

import (
	"errors"
	"fmt"

	"github.com/nitro-signer/nitro-signer/internal/cmsfmt"
)

// A minimal BER reader: the subset CMS EnvelopedData uses, with definite and
// indefinite lengths (KMS answers in BER) and constructed OCTET STRINGs.
// Every length is checked against the bytes that remain.

// ErrMalformed: the bytes are not the EnvelopedData expected.
var ErrMalformed = errors.New("cms: malformed EnvelopedData")

const maxDepth = 16

// Universal tags and classes used here.
const (
	classUniversal = 0
	classContext   = 2
)

type element struct {
	class       int
	tag         int
	constructed bool
	// content is the value's bytes: for an indefinite-length element, the
	// encodings of its children without the end-of-contents marker.
	content []byte
}

func (e element) is(class, tag int, constructed bool) bool {
	return e.class == class && e.tag == tag && e.constructed == constructed
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// next reads one element from b and returns it and the bytes after it.
func next(b []byte, depth int) (element, []byte, error) {
	if depth > maxDepth {
		return element{}, nil, malformed("nested too deeply")
	}
	if len(b) < 2 {
		return element{}, nil, malformed("truncated header")
	}
	e := element{class: int(b[0] >> 6), constructed: b[0]&0x20 != 0, tag: int(b[0] & 0x1f)}
	if e.tag == 0x1f {
		return element{}, nil, malformed("high tag numbers are not used")
	}
	l := b[1]
	b = b[2:]
	switch {
	case l < 0x80:
		if int(l) > len(b) {
			return element{}, nil, malformed("length %d past the end", l)
		}
		e.content = b[:l]
		return e, b[l:], nil
	case l == 0x80:
		if !e.constructed {
			return element{}, nil, malformed("indefinite length on a primitive")
		}
		rest := b
		for {
			if len(rest) >= 2 && rest[0] == 0 && rest[1] == 0 {
				e.content = b[:len(b)-len(rest)]
				return e, rest[2:], nil
			}
			var err error
			if _, rest, err = next(rest, depth+1); err != nil {
				return element{}, nil, err
			}
		}
	default:
		n := int(l & 0x7f)
		if n > 4 || n > len(b) {
			return element{}, nil, malformed("length of %d bytes", n)
		}
		var length int
		for _, c := range b[:n] {
			length = length<<8 | int(c)
		}
		b = b[n:]
		if length > len(b) {
			return element{}, nil, malformed("length %d past the end", length)
		}
		e.content = b[:length]
		return e, b[length:], nil
	}
}

// children splits a constructed element's content into its elements.
func children(e element, depth int) ([]element, error) {
	if !e.constructed {
		return nil, malformed("tag %d is not constructed", e.tag)
	}
	var out []element
	rest := e.content
	for len(rest) > 0 {
		c, r, err := next(rest, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		rest = r
	}
	return out, nil
}

// octets returns an OCTET STRING's value (class and tag already checked by
// the caller), joining the segments of a constructed one.
func octets(e element, depth int) ([]byte, error) {
	if !e.constructed {
		return e.content, nil
	}
	if depth > maxDepth {
		return nil, malformed("nested too deeply")
	}
	parts, err := children(e, depth)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, p := range parts {
		if !(p.class == classUniversal && p.tag == cmsfmt.TagOctetString) {
			return nil, malformed("segment of an OCTET STRING has tag %d", p.tag)
		}
		v, err := octets(p, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

// Package strictcbor holds the CBOR modes of the small protocol messages the
// enclave exchanges (channel frames, attestation user_data): decoding refuses
// duplicate and unknown keys, tags, indefinite lengths and invalid UTF-8, and
// bounds nesting and counts; encoding is RFC 8949 core deterministic.
package strictcbor

import "github.com/fxamacker/cbor/v2"

// options are Dec's, but for unknown fields.
var options = cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	IndefLength:      cbor.IndefLengthForbidden,
	TagsMd:           cbor.TagsForbidden,
	MaxNestedLevels:  4,
	MaxArrayElements: 16,
	MaxMapPairs:      16,
	UTF8:             cbor.UTF8RejectInvalid,
}

func mode(o cbor.DecOptions) cbor.DecMode {
	dm, err := o.DecMode()
	if err != nil {
		panic(err) // constant options
	}
	return dm
}

var (
	// Dec decodes small protocol messages strictly.
	Dec = mode(func() cbor.DecOptions { o := options; o.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField; return o }())
	// DecHead is Dec for reading a few fields of a message and skipping
	// the rest (the channel reads a refused frame's type and id only).
	DecHead = mode(options)
	// Enc encodes in the core deterministic encoding.
	Enc = func() cbor.EncMode {
		em, err := cbor.CoreDetEncOptions().EncMode()
		if err != nil {
			panic(err) // constant options
		}
		return em
	}()
)

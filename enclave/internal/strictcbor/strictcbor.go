// Package strictcbor holds the CBOR modes of the small protocol messages the
// enclave exchanges (channel frames, attestation user_data): decoding refuses
// duplicate and unknown keys, tags, indefinite lengths and invalid UTF-8, and
// bounds nesting and counts; encoding is RFC 8949 core deterministic.
package strictcbor

import "github.com/fxamacker/cbor/v2"

var (
	// Dec decodes small protocol messages strictly.
	Dec = func() cbor.DecMode {
		dm, err := cbor.DecOptions{
			DupMapKey:         cbor.DupMapKeyEnforcedAPF,
			IndefLength:       cbor.IndefLengthForbidden,
			TagsMd:            cbor.TagsForbidden,
			MaxNestedLevels:   4,
			MaxArrayElements:  16,
			MaxMapPairs:       16,
			ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
			UTF8:              cbor.UTF8RejectInvalid,
		}.DecMode()
		if err != nil {
			panic(err) // constant options
		}
		return dm
	}()
	// Enc encodes in the core deterministic encoding.
	Enc = func() cbor.EncMode {
		em, err := cbor.CoreDetEncOptions().EncMode()
		if err != nil {
			panic(err) // constant options
		}
		return em
	}()
)

package attestation

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// decMode is strict: duplicate keys, unknown fields, tags and trailing data
// are errors, nesting and counts are bounded before anything is allocated.
// Indefinite lengths are allowed because real AWS documents use them.
var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthAllowed,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNestedLevels,
		MaxArrayElements:  16, // the decoder's minimum; cabundle is checked against maxCABundle
		MaxMapPairs:       maxPCRs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err) // constant options; cannot fail at run time
	}
	return dm
}()

// coseTagByte is the one-byte CBOR head of tag 18 (COSE_Sign1).
const coseTagByte = 0xd2

// coseSign1 is the untagged COSE_Sign1 array (RFC 9052 §4.2).
type coseSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   cbor.RawMessage
	Unprotected cbor.RawMessage
	Payload     cbor.RawMessage
	Signature   cbor.RawMessage
}

// rawPayload holds each payload field undecoded so that its CBOR type can be
// checked exactly (a text string is not accepted where bytes are due).
type rawPayload struct {
	ModuleID    cbor.RawMessage `cbor:"module_id"`
	Digest      cbor.RawMessage `cbor:"digest"`
	Timestamp   cbor.RawMessage `cbor:"timestamp"`
	PCRs        cbor.RawMessage `cbor:"pcrs"`
	Certificate cbor.RawMessage `cbor:"certificate"`
	CABundle    cbor.RawMessage `cbor:"cabundle"`
	PublicKey   cbor.RawMessage `cbor:"public_key"`
	UserData    cbor.RawMessage `cbor:"user_data"`
	Nonce       cbor.RawMessage `cbor:"nonce"`
}

// payload is the decoded, bounds-checked payload.
type payload struct {
	moduleID    string
	digest      string
	timestamp   uint64
	pcrs        map[int][]byte
	certificate []byte
	cabundle    [][]byte
	publicKey   []byte
	userData    []byte
	nonce       []byte
}

// CBOR major types.
const (
	majorUint  = 0
	majorNint  = 1
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
	cborNull   = 0xf6
)

func major(raw cbor.RawMessage) byte { return raw[0] >> 5 }

// classify maps a decoder error to the sentinel of the rule it breaks.
func classify(what string, err error) error {
	var dup *cbor.DupMapKeyError
	var unknown *cbor.UnknownFieldError
	var extra *cbor.ExtraneousDataError
	switch {
	case errors.As(err, &dup):
		return fmt.Errorf("%w: %s: %v", ErrDuplicateKey, what, err)
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: %s: %v", ErrUnknownField, what, err)
	case errors.As(err, &extra):
		return fmt.Errorf("%w: %s", ErrTrailingData, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}

// decodeSign1 splits a COSE_Sign1 and checks its headers: the protected
// header must be exactly {1: -35} (ES384), the unprotected header an empty
// map, the payload attached and the signature 96 bytes.
func decodeSign1(doc []byte) (protected, body, sig []byte, err error) {
	if len(doc) > 0 && doc[0] == coseTagByte {
		doc = doc[1:]
	}
	var msg coseSign1
	if err := decMode.Unmarshal(doc, &msg); err != nil {
		return nil, nil, nil, classify("COSE_Sign1", err)
	}
	if msg.Protected == nil || major(msg.Protected) != majorBytes {
		return nil, nil, nil, fmt.Errorf("%w: protected header is not a byte string", ErrMalformed)
	}
	if msg.Unprotected == nil || major(msg.Unprotected) != majorMap {
		return nil, nil, nil, fmt.Errorf("%w: unprotected header is not a map", ErrMalformed)
	}
	if msg.Payload == nil || major(msg.Payload) != majorBytes {
		return nil, nil, nil, fmt.Errorf("%w: payload is not an attached byte string", ErrMalformed)
	}
	if msg.Signature == nil || major(msg.Signature) != majorBytes {
		return nil, nil, nil, fmt.Errorf("%w: signature is not a byte string", ErrMalformed)
	}
	if err := decMode.Unmarshal(msg.Protected, &protected); err != nil {
		return nil, nil, nil, classify("protected header", err)
	}
	if err := checkProtected(protected); err != nil {
		return nil, nil, nil, err
	}
	var unprotected map[int64]cbor.RawMessage
	if err := decMode.Unmarshal(msg.Unprotected, &unprotected); err != nil {
		return nil, nil, nil, classify("unprotected header", err)
	}
	if len(unprotected) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: unprotected header is not empty", ErrUnknownField)
	}
	if err := decMode.Unmarshal(msg.Payload, &body); err != nil {
		return nil, nil, nil, classify("payload", err)
	}
	if err := decMode.Unmarshal(msg.Signature, &sig); err != nil {
		return nil, nil, nil, classify("signature", err)
	}
	if len(sig) != coseSignatureLen {
		return nil, nil, nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrSignature, len(sig), coseSignatureLen)
	}
	return protected, body, sig, nil
}

// COSE header label and algorithm value (RFC 9053).
const (
	headerAlg = 1
	algES384  = -35
)

func checkProtected(protected []byte) error {
	if len(protected) == 0 {
		return fmt.Errorf("%w: empty protected header", ErrAlgorithm)
	}
	var hdr map[int64]cbor.RawMessage
	if err := decMode.Unmarshal(protected, &hdr); err != nil {
		return classify("protected header", err)
	}
	alg, ok := hdr[headerAlg]
	if !ok {
		return fmt.Errorf("%w: no alg in protected header", ErrAlgorithm)
	}
	var v int64
	if m := major(alg); m != majorUint && m != majorNint {
		return fmt.Errorf("%w: alg is not an integer", ErrAlgorithm)
	}
	if err := decMode.Unmarshal(alg, &v); err != nil || v != algES384 {
		return fmt.Errorf("%w: alg %v", ErrAlgorithm, v)
	}
	if len(hdr) != 1 {
		return fmt.Errorf("%w: protected header carries more than alg", ErrUnknownField)
	}
	return nil
}

// decodePayload decodes and bounds-checks the attestation payload.
func decodePayload(body []byte) (*payload, error) {
	if len(body) == 0 || major(body) != majorMap {
		return nil, fmt.Errorf("%w: payload is not a map", ErrMalformed)
	}
	var raw rawPayload
	if err := decMode.Unmarshal(body, &raw); err != nil {
		return nil, classify("payload", err)
	}
	p := &payload{}
	var err error
	if p.moduleID, err = text("module_id", raw.ModuleID, maxModuleIDLen); err != nil {
		return nil, err
	}
	if p.digest, err = text("digest", raw.Digest, 16); err != nil {
		return nil, err
	}
	if p.digest != "SHA384" {
		return nil, fmt.Errorf("%w: %q", ErrDigest, p.digest)
	}
	if p.timestamp, err = uint64Field("timestamp", raw.Timestamp); err != nil {
		return nil, err
	}
	if p.pcrs, err = pcrs(raw.PCRs); err != nil {
		return nil, err
	}
	if p.certificate, err = byteField("certificate", raw.Certificate, 1, maxCertLen, false); err != nil {
		return nil, err
	}
	if p.cabundle, err = cabundle(raw.CABundle); err != nil {
		return nil, err
	}
	if p.publicKey, err = byteField("public_key", raw.PublicKey, 1, maxPublicKeyLen, true); err != nil {
		return nil, err
	}
	if p.userData, err = byteField("user_data", raw.UserData, 0, maxUserDataLen, true); err != nil {
		return nil, err
	}
	if p.nonce, err = byteField("nonce", raw.Nonce, 0, maxNonceLen, true); err != nil {
		return nil, err
	}
	return p, nil
}

func missing(raw cbor.RawMessage) bool { return len(raw) == 0 || raw[0] == cborNull }

func text(name string, raw cbor.RawMessage, maxLen int) (string, error) {
	if missing(raw) {
		return "", fmt.Errorf("%w: %s", ErrMissingField, name)
	}
	if major(raw) != majorText {
		return "", fmt.Errorf("%w: %s is not a text string", ErrMalformed, name)
	}
	var s string
	if err := decMode.Unmarshal(raw, &s); err != nil {
		return "", classify(name, err)
	}
	if len(s) == 0 || len(s) > maxLen {
		return "", fmt.Errorf("%w: %s has length %d", ErrFieldBounds, name, len(s))
	}
	return s, nil
}

func uint64Field(name string, raw cbor.RawMessage) (uint64, error) {
	if missing(raw) {
		return 0, fmt.Errorf("%w: %s", ErrMissingField, name)
	}
	if major(raw) != majorUint {
		return 0, fmt.Errorf("%w: %s is not an unsigned integer", ErrMalformed, name)
	}
	var v uint64
	if err := decMode.Unmarshal(raw, &v); err != nil {
		return 0, classify(name, err)
	}
	if v == 0 {
		return 0, fmt.Errorf("%w: %s is zero", ErrFieldBounds, name)
	}
	return v, nil
}

// byteField decodes a byte string of minLen..maxLen bytes. An optional field
// may be absent or null, and then decodes to nil.
func byteField(name string, raw cbor.RawMessage, minLen, maxLen int, optional bool) ([]byte, error) {
	if missing(raw) {
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrMissingField, name)
	}
	if major(raw) != majorBytes {
		return nil, fmt.Errorf("%w: %s is not a byte string", ErrMalformed, name)
	}
	var b []byte
	if err := decMode.Unmarshal(raw, &b); err != nil {
		return nil, classify(name, err)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, fmt.Errorf("%w: %s has length %d, want %d..%d", ErrFieldBounds, name, len(b), minLen, maxLen)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func pcrs(raw cbor.RawMessage) (map[int][]byte, error) {
	if missing(raw) {
		return nil, fmt.Errorf("%w: pcrs", ErrMissingField)
	}
	if major(raw) != majorMap {
		return nil, fmt.Errorf("%w: pcrs is not a map", ErrMalformed)
	}
	var m map[int64]cbor.RawMessage
	if err := decMode.Unmarshal(raw, &m); err != nil {
		return nil, classify("pcrs", err)
	}
	if len(m) == 0 || len(m) > maxPCRs {
		return nil, fmt.Errorf("%w: %d PCRs", ErrFieldBounds, len(m))
	}
	out := make(map[int][]byte, len(m))
	for index, value := range m {
		if index < 0 || index >= maxPCRs {
			return nil, fmt.Errorf("%w: %d", ErrPCRIndex, index)
		}
		if missing(value) || major(value) != majorBytes {
			return nil, fmt.Errorf("%w: PCR%d is not a byte string", ErrMalformed, index)
		}
		var b []byte
		if err := decMode.Unmarshal(value, &b); err != nil {
			return nil, classify("pcrs", err)
		}
		if len(b) != pcrLenSHA384 {
			return nil, fmt.Errorf("%w: PCR%d is %d bytes, want %d", ErrPCRLength, index, len(b), pcrLenSHA384)
		}
		out[int(index)] = b
	}
	return out, nil
}

func cabundle(raw cbor.RawMessage) ([][]byte, error) {
	if missing(raw) {
		return nil, fmt.Errorf("%w: cabundle", ErrMissingField)
	}
	if major(raw) != majorArray {
		return nil, fmt.Errorf("%w: cabundle is not an array", ErrMalformed)
	}
	var items []cbor.RawMessage
	if err := decMode.Unmarshal(raw, &items); err != nil {
		return nil, classify("cabundle", err)
	}
	if len(items) == 0 || len(items) > maxCABundle {
		return nil, fmt.Errorf("%w: cabundle has %d entries, want 1..%d", ErrFieldBounds, len(items), maxCABundle)
	}
	out := make([][]byte, len(items))
	for i, item := range items {
		b, err := byteField(fmt.Sprintf("cabundle[%d]", i), item, 1, maxCertLen, false)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

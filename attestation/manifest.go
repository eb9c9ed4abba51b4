package attestation

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrManifest marks a pcrs.json manifest refused by ParseManifest.
var ErrManifest = errors.New("attestation: malformed PCR manifest")

// Manifest is pcrs.json: the PCRs an enclave image measures to, which
// clients pin, and what the image was built from. `signerctl eif measure
// --manifest` writes one for a built image, the simulated NSM one for a
// development enclave:
//
//	{"version": "v1.2.3",
//	 "pcr0": HEX96, "pcr1": HEX96, "pcr2": HEX96, "pcr8": HEX96,
//	 "eif_sha256": HEX64,
//	 "inputs": {"<name>": HEX64, ...}}
//
// pcr0, pcr1 and pcr2 are required; pcr8 (a signed image), version,
// eif_sha256 and inputs are optional. Hex is lowercase, as the writers
// write it.
type Manifest struct {
	// Version names the image; may be empty.
	Version string
	// PCRs by index: 0, 1 and 2, and 8 when the image is signed. Each
	// value is 48 bytes (SHA-384).
	PCRs map[int][]byte
	// EIFSHA256 is SHA-256 of the image file; nil when absent.
	EIFSHA256 []byte
	// Inputs are the SHA-256 of each named build input; nil when absent.
	Inputs map[string][]byte
}

// manifestPCRs are the PCR keys a manifest may hold; the first three are
// required.
var manifestPCRs = map[string]int{"pcr0": 0, "pcr1": 1, "pcr2": 2, "pcr8": 8}

// ParseManifest parses a pcrs.json manifest strictly: UTF-8 JSON of at most
// MaxManifestSize bytes, one object whose keys are exactly those Manifest
// documents, each once; every PCR 96 lowercase hex characters; nothing
// after the object. Which value a key has never depends on the order of a
// map: a key that is not a manifest field, in any case or spelling
// ("pcr1_previous", "PCR1", "pcr01"), is refused, not skipped.
func ParseManifest(b []byte) (*Manifest, error) {
	dec, err := objectDecoder(b, MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m := &Manifest{PCRs: map[int][]byte{}}
	seen := map[string]bool{}
	for dec.More() {
		key, err := nextKey(dec, seen)
		if err != nil {
			return nil, err
		}
		switch index, isPCR := manifestPCRs[key]; {
		case isPCR:
			if m.PCRs[index], err = hexValue(dec, key, pcrLenSHA384); err != nil {
				return nil, err
			}
		case key == "version":
			if m.Version, err = stringToken(dec, key); err != nil {
				return nil, err
			}
			if len(m.Version) > maxManifestVersion {
				return nil, fmt.Errorf("%w: version of %d bytes, limit %d", ErrManifest, len(m.Version), maxManifestVersion)
			}
		case key == "eif_sha256":
			if m.EIFSHA256, err = hexValue(dec, key, 32); err != nil {
				return nil, err
			}
		case key == "inputs":
			if m.Inputs, err = manifestInputs(dec); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: unknown key %q", ErrManifest, truncate(key))
		}
	}
	if err := endOfObject(dec); err != nil {
		return nil, err
	}
	for _, key := range []string{"pcr0", "pcr1", "pcr2"} {
		if !seen[key] {
			return nil, fmt.Errorf("%w: %s is missing", ErrManifest, key)
		}
	}
	return m, nil
}

func manifestInputs(dec *json.Decoder) (map[string][]byte, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	inputs := map[string][]byte{}
	for dec.More() {
		name, err := stringToken(dec, "input name")
		if err != nil {
			return nil, err
		}
		if _, dup := inputs[name]; dup {
			return nil, fmt.Errorf("%w: input %q appears twice", ErrManifest, truncate(name))
		}
		if name == "" || len(name) > maxManifestInputName || len(inputs) == maxManifestInputs {
			return nil, fmt.Errorf("%w: input names are 1..%d bytes, at most %d of them", ErrManifest, maxManifestInputName, maxManifestInputs)
		}
		if inputs[name], err = hexValue(dec, "input "+name, 32); err != nil {
			return nil, err
		}
	}
	if len(inputs) == 0 {
		inputs = nil // as Marshal omits it
	}
	return inputs, expectDelim(dec, '}')
}

// objectDecoder checks b's size and encoding and reads the opening brace
// of the one object a manifest is.
func objectDecoder(b []byte, max int) (*json.Decoder, error) {
	if len(b) > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrManifest, len(b), max)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrManifest)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	return dec, nil
}

// endOfObject reads the closing brace and insists nothing follows.
func endOfObject(dec *json.Decoder) error {
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the object", ErrManifest)
	}
	return nil
}

// nextKey reads an object's next key, which seen must not hold yet.
func nextKey(dec *json.Decoder, seen map[string]bool) (string, error) {
	key, err := stringToken(dec, "key")
	if err != nil {
		return "", err
	}
	if seen[key] {
		return "", fmt.Errorf("%w: key %q appears twice", ErrManifest, truncate(key))
	}
	seen[key] = true
	return key, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: want %q", ErrManifest, want)
	}
	return nil
}

func stringToken(dec *json.Decoder, what string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrManifest, err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s is not a string", ErrManifest, truncate(what))
	}
	return s, nil
}

// hexValue reads a string of exactly 2·size lowercase hex characters.
func hexValue(dec *json.Decoder, what string, size int) ([]byte, error) {
	s, err := stringToken(dec, what)
	if err != nil {
		return nil, err
	}
	if len(s) != 2*size {
		return nil, fmt.Errorf("%w: %s is %d characters, want %d lowercase hex", ErrManifest, truncate(what), len(s), 2*size)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, fmt.Errorf("%w: %s is not lowercase hex", ErrManifest, truncate(what))
		}
	}
	return hex.DecodeString(s)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Marshal writes the manifest as ParseManifest reads it, keys in a fixed
// order, indented; it refuses a manifest ParseManifest would refuse.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	var w struct {
		Version string            `json:"version,omitempty"`
		PCR0    string            `json:"pcr0"`
		PCR1    string            `json:"pcr1"`
		PCR2    string            `json:"pcr2"`
		PCR8    string            `json:"pcr8,omitempty"`
		EIF     string            `json:"eif_sha256,omitempty"`
		Inputs  map[string]string `json:"inputs,omitempty"`
	}
	w.Version = m.Version
	w.PCR0, w.PCR1, w.PCR2 = hex.EncodeToString(m.PCRs[0]), hex.EncodeToString(m.PCRs[1]), hex.EncodeToString(m.PCRs[2])
	if v, ok := m.PCRs[8]; ok {
		w.PCR8 = hex.EncodeToString(v)
	}
	if m.EIFSHA256 != nil {
		w.EIF = hex.EncodeToString(m.EIFSHA256)
	}
	if len(m.Inputs) > 0 {
		w.Inputs = map[string]string{}
		for name, sum := range m.Inputs {
			w.Inputs[name] = hex.EncodeToString(sum)
		}
	}
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (m *Manifest) check() error {
	for _, i := range []int{0, 1, 2} {
		if _, ok := m.PCRs[i]; !ok {
			return fmt.Errorf("%w: PCR%d is missing", ErrManifest, i)
		}
	}
	for i, v := range m.PCRs {
		if i != 0 && i != 1 && i != 2 && i != 8 || len(v) != pcrLenSHA384 {
			return fmt.Errorf("%w: PCR%d of %d bytes cannot be in a manifest", ErrManifest, i, len(v))
		}
	}
	if len(m.Version) > maxManifestVersion || !utf8.ValidString(m.Version) {
		return fmt.Errorf("%w: version is not UTF-8 of at most %d bytes", ErrManifest, maxManifestVersion)
	}
	if m.EIFSHA256 != nil && len(m.EIFSHA256) != 32 {
		return fmt.Errorf("%w: eif_sha256 of %d bytes", ErrManifest, len(m.EIFSHA256))
	}
	if len(m.Inputs) > maxManifestInputs {
		return fmt.Errorf("%w: %d inputs, limit %d", ErrManifest, len(m.Inputs), maxManifestInputs)
	}
	for name, sum := range m.Inputs {
		if name == "" || len(name) > maxManifestInputName || !utf8.ValidString(name) || len(sum) != 32 {
			return fmt.Errorf("%w: input %q", ErrManifest, truncate(name))
		}
	}
	return nil
}

package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"encoding/hex"
)

// PCRFlags collects repeated --pcr N=HEX flags.
type PCRFlags map[int][]byte

// String is for flag.Value.
func (p PCRFlags) String() string { return fmt.Sprintf("%d pins", len(p)) }

// Set adds one pin, N=HEX; a PCR pinned twice is an error.
func (p PCRFlags) Set(v string) error {
	index, value, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want N=HEX")
	}
	i, err := strconv.Atoi(index)
	if err != nil {
		return fmt.Errorf("PCR index %q: %v", index, err)
	}
	b, err := hex.DecodeString(strings.TrimPrefix(value, "0x"))
	if err != nil {
		return fmt.Errorf("PCR%d value: %v", i, err)
	}
	if _, dup := p[i]; dup {
		return fmt.Errorf("PCR%d pinned twice", i)
	}
	p[i] = b
	return nil
}

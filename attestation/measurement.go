package attestation

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Measurement is one set of PCR values a policy allows, with the window in
// which it is allowed. It pins either PCR0, PCR1 and PCR2 (an image's
// measurements, optionally with PCR3, the instance's IAM role, and PCR4,
// the instance) or PCR8 (the image's signing certificate, for images
// signed at build time), optionally with PCR0 as well.
type Measurement struct {
	// Name says which release this is, for Document.Measurement and log
	// lines.
	Name string
	// PCRs are the values pinned, by index: 0, 1, 2, 3, 4 or 8, each 48
	// bytes.
	PCRs map[int][]byte
	// NotBefore and NotAfter bound when the measurement matches; a zero
	// value leaves that side open.
	NotBefore, NotAfter time.Time
}

// allowedIndexes are the PCRs a Measurement may pin.
var allowedIndexes = []int{0, 1, 2, 3, 4, 8}

func (m *Measurement) check() error {
	for i, v := range m.PCRs {
		if !slices.Contains(allowedIndexes, i) {
			return fmt.Errorf("PCR%d cannot be pinned (only 0, 1, 2, 3, 4, 8)", i)
		}
		if len(v) != pcrLenSHA384 {
			return fmt.Errorf("PCR%d is %d bytes, want %d", i, len(v), pcrLenSHA384)
		}
		if i <= 2 || i == 8 {
			if bytes.Equal(v, zeroPCR[:]) {
				return fmt.Errorf("PCR%d is pinned to zeros, which %s reports", i, zerosMean(i))
			}
		}
	}
	_, has0 := m.PCRs[0]
	_, has1 := m.PCRs[1]
	_, has2 := m.PCRs[2]
	_, has8 := m.PCRs[8]
	if !has8 && !(has0 && has1 && has2) {
		return errors.New("pins neither PCR0, PCR1 and PCR2 nor PCR8")
	}
	if !m.NotAfter.IsZero() && !m.NotBefore.IsZero() && !m.NotAfter.After(m.NotBefore) {
		return errors.New("not_after is not after not_before")
	}
	return nil
}

// zerosMean says who reports PCR i as zeros: a pin to zeros would accept
// every one of them.
func zerosMean(i int) string {
	if i == 8 {
		return "every unsigned image"
	}
	return "every debug-mode enclave"
}

// matches reports whether every PCR m pins is in pcrs, equal.
func (m *Measurement) matches(pcrs map[int][]byte) bool {
	for i, want := range m.PCRs {
		if got, ok := pcrs[i]; !ok || !bytes.Equal(got, want) {
			return false
		}
	}
	return true
}

// match finds the allowed measurement the document's PCRs match, valid at
// at. A document matching only measurements outside their windows is
// refused for the window (ErrReleaseExpired, ErrReleaseNotYetValid), one
// matching none for its PCRs (ErrPCRMismatch).
func match(allowed []Measurement, pcrs map[int][]byte, at time.Time) (string, error) {
	var window error
	for i := range allowed {
		m := &allowed[i]
		if !m.matches(pcrs) {
			continue
		}
		switch {
		case !m.NotAfter.IsZero() && !at.Before(m.NotAfter):
			window = fmt.Errorf("%w: %q allowed until %s", ErrReleaseExpired, truncate(m.Name), m.NotAfter.Format(time.RFC3339))
		case !m.NotBefore.IsZero() && at.Before(m.NotBefore):
			if window == nil {
				window = fmt.Errorf("%w: %q allowed from %s", ErrReleaseNotYetValid, truncate(m.Name), m.NotBefore.Format(time.RFC3339))
			}
		default:
			return m.Name, nil
		}
	}
	if window != nil {
		return "", window
	}
	return "", fmt.Errorf("%w: the document matches none of the %d allowed measurements", ErrPCRMismatch, len(allowed))
}

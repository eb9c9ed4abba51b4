//go:build nsmsim

package custody_test

import (
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/nsm/nsmsim"
)

// openSimulator opens the simulated NSM. Without -tags nsmsim,
// sim_other_test.go skips the test instead: only this construction needs
// the tag, so every test compiles, and runs or says why not, untagged.
func openSimulator(tb testing.TB, o simOptions) simNSM {
	tb.Helper()
	s, err := nsmsim.Open(nsmsim.Options{StateDir: o.StateDir, Binary: o.Binary, Debug: o.Debug, Clock: o.Clock})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// measureImage is the simulator's measurement of a binary (PCR0, 1, 2).
func measureImage(tb testing.TB, binary string) map[int][]byte {
	tb.Helper()
	pcrs, err := nsmsim.Measure(binary)
	if err != nil {
		tb.Fatal(err)
	}
	return pcrs
}

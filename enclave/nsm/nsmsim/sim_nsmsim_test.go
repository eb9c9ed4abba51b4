//go:build nsmsim

package nsmsim_test

import (
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/nsm/nsmsim"
)

// openSimulator and measure reach the simulator. Without -tags nsmsim,
// sim_other_test.go skips the test instead: only these need the tag, so
// every test compiles, and runs or says why not, untagged.
func openSimulator(tb testing.TB, o simOptions) simNSM {
	tb.Helper()
	s, err := nsmsim.Open(nsmsim.Options{StateDir: o.StateDir, Binary: o.Binary, Debug: o.Debug, Clock: o.Clock})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func measure(tb testing.TB, binary string) (map[int][]byte, error) {
	tb.Helper()
	return nsmsim.Measure(binary)
}

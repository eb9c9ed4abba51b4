//go:build !nsmsim

package nsmsim_test

import "testing"

const needsSimulator = "needs the simulated NSM: go test -tags nsmsim"

// openSimulator and measure skip: the simulated NSM is compiled only with
// -tags nsmsim (sim_nsmsim_test.go).
func openSimulator(tb testing.TB, _ simOptions) simNSM {
	tb.Helper()
	tb.Skip(needsSimulator)
	return nil
}

func measure(tb testing.TB, _ string) (map[int][]byte, error) {
	tb.Helper()
	tb.Skip(needsSimulator)
	return nil, nil
}

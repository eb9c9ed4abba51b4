//go:build !nsmsim

package kmsseal_test

import "testing"

// openSimulator skips: the simulated NSM is compiled only with -tags nsmsim
// (sim_nsmsim_test.go).
func openSimulator(tb testing.TB, _ simOptions) simNSM {
	tb.Helper()
	tb.Skip("needs the simulated NSM: go test -tags nsmsim")
	return nil
}

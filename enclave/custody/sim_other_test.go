//go:build !nsmsim

package custody_test

import "testing"

// openSimulator skips: the simulated NSM is compiled only with -tags nsmsim
// (sim_nsmsim_test.go).
func openSimulator(tb testing.TB, _ simOptions) simNSM {
	tb.Helper()
	tb.Skip("needs the simulated NSM: go test -tags nsmsim")
	return nil
}

// measureImage skips, as openSimulator does.
func measureImage(tb testing.TB, _ string) map[int][]byte {
	tb.Helper()
	tb.Skip("needs the simulated NSM: go test -tags nsmsim")
	return nil
}

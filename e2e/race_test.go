//go:build race

package e2e

// raceDetector: the tests run under the race detector, and so do the
// binaries they build and start.
const raceDetector = true

//go:build race

package channel

// raceEnabled: the race detector randomizes the scheduler, so tests of
// what the scheduler runs next hold only without it.
const raceEnabled = true

//go:build linux

package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the calling thread's CPU time, from the scheduler's own
// nanosecond count (CLOCK_THREAD_CPUTIME_ID). getrusage(RUSAGE_THREAD)
// reports the same total split by tick samples and clamped never to go
// backwards, which read a millisecond's slice about a quarter short.
func threadCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}

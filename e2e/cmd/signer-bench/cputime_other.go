//go:build !linux

package main

import (
	"errors"
	"time"
)

// threadCPU needs Linux's per-thread CPU clock (CLOCK_THREAD_CPUTIME_ID); elsewhere
// the crypto floor cannot be measured, and the bench says so.
func threadCPU() (time.Duration, error) {
	return 0, errors.New("the crypto floor is timed in thread CPU time, which needs Linux")
}

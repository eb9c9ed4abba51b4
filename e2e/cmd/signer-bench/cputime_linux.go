//go:build linux

package main

import (
	"syscall"
	"time"
)

// threadCPU is the calling thread's user and system CPU time.
func threadCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// rusageThread is RUSAGE_THREAD (Linux).
const rusageThread = 1

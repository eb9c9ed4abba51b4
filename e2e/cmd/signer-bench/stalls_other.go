//go:build !linux

package main

import (
	"errors"
	"time"
)

// measureStalls pins threads to CPUs, which this needs Linux for.
func measureStalls(time.Duration) (*StallReport, error) {
	return nil, errors.New("--host-stalls pins a thread to each CPU, which needs Linux")
}

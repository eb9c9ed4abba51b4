//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// measureStalls spins one thread on each CPU the process may use for d
// and reports the gaps each saw.
func measureStalls(d time.Duration) (*StallReport, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("reading the CPUs this process may use: %w", err)
	}
	var cpus []int
	for cpu := range 1024 {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	if n := runtime.GOMAXPROCS(0); n < len(cpus) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(len(cpus)))
	}
	steal0, stealErr := stealTicks()
	results := make([]CPUStalls, len(cpus))
	errs := make([]error, len(cpus))
	var wg sync.WaitGroup
	for i, cpu := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = spin(cpu, d)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	r := &StallReport{DurationS: d.Seconds(), CPUs: results, StealMS: -1}
	if steal1, err := stealTicks(); err == nil && stealErr == nil {
		r.StealMS = float64(steal1-steal0) * 1000 / 100 // USER_HZ
	}
	return r, nil
}

// spin runs on cpu alone for d, reading the wall clock and its own CPU
// clock in a loop, and counts the gaps between readings.
func spin(cpu int, d time.Duration) (CPUStalls, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return CPUStalls{}, fmt.Errorf("pinning a thread to CPU %d: %w", cpu, err)
	}
	c := newStallCounter()
	start := time.Now()
	end := start.Add(d)
	last := start
	lastCPU, err := threadCPU()
	if err != nil {
		return CPUStalls{}, err
	}
	for last.Before(end) {
		now := time.Now()
		nowCPU, err := threadCPU()
		if err != nil {
			return CPUStalls{}, err
		}
		c.add(now.Sub(last), nowCPU-lastCPU)
		last, lastCPU = now, nowCPU
	}
	return c.report(cpu, last.Sub(start)), nil
}

// stealTicks is the steal column of /proc/stat's cpu line, in USER_HZ
// ticks.
func stealTicks() (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 8 && fields[0] == "cpu" {
			return strconv.ParseUint(fields[8], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/stat has no cpu line with a steal column")
}

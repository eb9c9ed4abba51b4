package main

import (
	"math"
	"strconv"
	"time"
)

// A spinning thread alone on its CPU runs without a gap longer than a
// timer tick unless the CPU is taken from it: by the guest's scheduler
// (another thread to run), or by the hypervisor (the vCPU itself is
// descheduled, which a guest without steal accounting cannot see). On an
// otherwise idle machine the second kind is what a gap is, and any request
// in flight on that CPU waits it out: it sets a floor under the latency
// tail that no server can lower. --host-stalls measures it.

// stallThresholds are the gap lengths the report counts gaps above.
var stallThresholds = []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}

// CPUStalls is one CPU's gaps over the window.
type CPUStalls struct {
	CPU int `json:"cpu"`
	// Over counts the gaps longer than each threshold, by its
	// milliseconds ("1", "2", "5", "10", "20").
	Over map[string]int `json:"gaps_over_ms"`
	// LostMS is the time in gaps over 1 ms, MaxMS the longest gap.
	LostMS float64 `json:"lost_ms"`
	MaxMS  float64 `json:"max_ms"`
	// ChargedMS is the part of LostMS the thread's CPU clock counted as
	// running: the guest never took the CPU from it, so the vCPU was
	// descheduled beneath the guest.
	ChargedMS float64 `json:"charged_ms"`
	// LostFraction is LostMS over the window.
	LostFraction float64 `json:"lost_fraction"`
}

// StallReport is what --host-stalls writes.
type StallReport struct {
	DurationS float64     `json:"duration_s"`
	CPUs      []CPUStalls `json:"cpus"`
	// StealMS is what the guest kernel accounted as stolen over the
	// window, all CPUs (/proc/stat); -1 when it could not be read.
	StealMS float64 `json:"steal_ms"`
}

// stallCounter accumulates one CPU's gaps.
type stallCounter struct {
	over    []int
	lost    time.Duration
	charged time.Duration
	max     time.Duration
}

func newStallCounter() *stallCounter { return &stallCounter{over: make([]int, len(stallThresholds))} }

// add counts a gap of wall time gap, of which the thread was charged cpu
// of CPU time; gaps of a millisecond or less are not gaps.
func (s *stallCounter) add(gap, cpu time.Duration) {
	if gap <= stallThresholds[0] {
		return
	}
	for i, t := range stallThresholds {
		if gap > t {
			s.over[i]++
		}
	}
	s.lost += gap
	s.charged += min(max(cpu, 0), gap)
	s.max = max(s.max, gap)
}

func (s *stallCounter) report(cpu int, window time.Duration) CPUStalls {
	r := CPUStalls{CPU: cpu, Over: map[string]int{}, LostMS: ms(s.lost), MaxMS: ms(s.max), ChargedMS: ms(s.charged)}
	for i, t := range stallThresholds {
		r.Over[strconv.Itoa(int(t/time.Millisecond))] = s.over[i]
	}
	if window > 0 {
		r.LostFraction = math.Round(float64(s.lost)/float64(window)*1e4) / 1e4
	}
	return r
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

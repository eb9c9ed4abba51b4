package main

import (
	"testing"
	"time"
)

func TestStallCounter(t *testing.T) {
	const msec = time.Millisecond
	tests := []struct {
		name        string
		gaps, cpu   []time.Duration
		over        map[string]int
		lost, max   float64
		charged     float64
		windowFrac  float64
		windowWidth time.Duration
	}{
		{name: "no_gap_at_or_under_a_millisecond", gaps: []time.Duration{10 * time.Microsecond, msec}, cpu: []time.Duration{0, msec},
			over: map[string]int{"1": 0, "2": 0, "5": 0, "10": 0, "20": 0}, windowWidth: time.Second},
		{name: "each_gap_counted_above_every_threshold_it_passes", gaps: []time.Duration{1500 * time.Microsecond, 6 * msec, 25 * msec}, cpu: []time.Duration{0, 6 * msec, 0},
			over: map[string]int{"1": 3, "2": 2, "5": 2, "10": 1, "20": 1}, lost: 32.5, max: 25, charged: 6, windowFrac: 0.0325, windowWidth: time.Second},
		{name: "charged_never_above_the_gap", gaps: []time.Duration{3 * msec}, cpu: []time.Duration{9 * msec},
			over: map[string]int{"1": 1, "2": 1, "5": 0, "10": 0, "20": 0}, lost: 3, max: 3, charged: 3, windowFrac: 0.003, windowWidth: time.Second},
		{name: "negative_cpu_counts_nothing", gaps: []time.Duration{3 * msec}, cpu: []time.Duration{-msec},
			over: map[string]int{"1": 1, "2": 1, "5": 0, "10": 0, "20": 0}, lost: 3, max: 3, windowFrac: 0.003, windowWidth: time.Second},
		{name: "no_window_no_fraction", gaps: []time.Duration{3 * msec}, cpu: []time.Duration{0},
			over: map[string]int{"1": 1, "2": 1, "5": 0, "10": 0, "20": 0}, lost: 3, max: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStallCounter()
			for i, g := range tt.gaps {
				c.add(g, tt.cpu[i])
			}
			r := c.report(1, tt.windowWidth)
			if r.CPU != 1 || r.LostMS != tt.lost || r.MaxMS != tt.max || r.ChargedMS != tt.charged || r.LostFraction != tt.windowFrac {
				t.Errorf("report %+v, want lost %v max %v charged %v fraction %v", r, tt.lost, tt.max, tt.charged, tt.windowFrac)
			}
			for k, want := range tt.over {
				if r.Over[k] != want {
					t.Errorf("gaps over %s ms: %d, want %d", k, r.Over[k], want)
				}
			}
			if len(r.Over) != len(tt.over) {
				t.Errorf("thresholds %v, want %v", r.Over, tt.over)
			}
		})
	}
}

// TestMeasureStallsReportsEveryCPU runs the real meter briefly: one entry
// per CPU the process may use, each with a window and sane numbers. (The
// gaps themselves are the machine's, so only their bounds are checked.)
func TestMeasureStallsReportsEveryCPU(t *testing.T) {
	r, err := measureStalls(50 * time.Millisecond)
	if err != nil {
		t.Skipf("no stall meter here: %v", err)
	}
	if len(r.CPUs) == 0 {
		t.Fatal("no CPU measured")
	}
	seen := map[int]bool{}
	for _, c := range r.CPUs {
		if seen[c.CPU] {
			t.Fatalf("CPU %d measured twice", c.CPU)
		}
		seen[c.CPU] = true
		if c.LostMS < 0 || c.LostMS > 50+c.MaxMS || c.ChargedMS > c.LostMS || c.LostFraction < 0 || c.LostFraction > 1 {
			t.Errorf("CPU %d: implausible %+v", c.CPU, c)
		}
	}
}

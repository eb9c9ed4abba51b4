package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sweepOf is a sweep whose step i offered offered[i] and achieved
// achieved[i] requests/s, with p50 and p99 rising and the CPU falling.
func sweepOf(offered, achieved []float64) *SweepReport {
	s := &SweepReport{Protocol: "HTTP/2", Concurrency: 256, Mix: map[string]int{"dev/sign-message": 1}, StepDuration: 5, Maximum: Maximum{MaxRPS: 4000}}
	for i := range offered {
		s.Steps = append(s.Steps, SweepStep{Fraction: offered[i] / 4000, BenchReport: &BenchReport{
			Rate: offered[i], RPS: achieved[i], CPUPerReqUS: 900 - 50*float64(i),
			LatencyMS: map[string]float64{"p50": 2 + float64(i), "p99": 5 * math.Pow(2, float64(i))},
		}})
	}
	return s
}

// svgShape parses an SVG strictly as XML and returns its polylines' points
// and every text.
func svgShape(t *testing.T, b []byte) (lines [][]point, texts []string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	dec.Strict = true
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return lines, texts
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			inText = el.Name.Local == "text"
			if el.Name.Local != "polyline" {
				continue
			}
			var pts []point
			for _, a := range el.Attr {
				if a.Name.Local != "points" {
					continue
				}
				for _, p := range strings.Fields(a.Value) {
					xs, ys, _ := strings.Cut(p, ",")
					x, err1 := strconv.ParseFloat(xs, 64)
					y, err2 := strconv.ParseFloat(ys, 64)
					if err1 != nil || err2 != nil {
						t.Fatalf("point %q", p)
					}
					pts = append(pts, point{x, y})
				}
			}
			lines = append(lines, pts)
		case xml.CharData:
			if inText {
				texts = append(texts, string(el))
			}
		case xml.EndElement:
			inText = false
		}
	}
}

func TestPlotSweepDrawsEveryStep(t *testing.T) {
	offered := []float64{400, 800, 1200, 1600, 2000, 2400, 2800, 3200, 3600, 4000, 4400, 5000}
	achieved := []float64{400, 800, 1200, 1600, 2000, 2400, 2800, 3200, 3590, 3900, 3950, 3980}
	b, err := plotSweep(sweepOf(offered, achieved))
	if err != nil {
		t.Fatal(err)
	}
	lines, texts := svgShape(t, b)
	if len(lines) != 5 {
		t.Fatalf("%d lines, want p50 and p99 against offered and achieved, and the CPU", len(lines))
	}
	for i, l := range lines {
		if len(l) != len(offered) {
			t.Fatalf("line %d has %d points, want one per step (%d)", i, len(l), len(offered))
		}
		for _, p := range l {
			if p.x < marginLeft-0.1 || p.x > marginLeft+innerWidth+0.1 || p.y < marginTop-0.1 || p.y > marginTop+innerHeight+0.1 {
				t.Fatalf("line %d: point %v outside the plot", i, p)
			}
		}
	}
	// The offered lines rise to the right; where achieved falls short of
	// offered (saturation), its points are left of the offered ones.
	p99Offered, p99Achieved := lines[0], lines[1]
	if !slices.IsSortedFunc(p99Offered, func(a, b point) int { return int(math.Copysign(1, a.x-b.x)) }) {
		t.Fatalf("offered rate not rising: %v", p99Offered)
	}
	last := len(offered) - 1
	if p99Achieved[last].x >= p99Offered[last].x || p99Achieved[0].x != p99Offered[0].x {
		t.Fatalf("achieved %v against offered %v at the ends", p99Achieved[last], p99Offered[last])
	}
	// Latency up is y down; p99 above p50.
	if p99Offered[last].y >= p99Offered[0].y || lines[2][0].y <= p99Offered[0].y {
		t.Fatalf("p99 %v, p50 %v: latency not drawn upwards", p99Offered, lines[2])
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"p50 against offered rate", "p99 against achieved rate", "server CPU per request (µs)", "request rate (requests/s)", "latency (ms, log scale)", "closed-loop maximum 4000 requests/s", "dev/sign-message×1"} {
		if !strings.Contains(all, want) {
			t.Fatalf("no text %q in %q", want, all)
		}
	}
}

func TestPlotSweepLeavesOutWhatWasNotMeasured(t *testing.T) {
	s := sweepOf([]float64{400, 800, 1200}, []float64{400, 800, 1200})
	s.Steps[1].LatencyMS = map[string]float64{} // nothing answered
	for i := range s.Steps {
		s.Steps[i].CPUPerReqUS = 0 // no --pid
	}
	s.Steps = append(s.Steps, SweepStep{Fraction: 1}) // no report
	b, err := plotSweep(s)
	if err != nil {
		t.Fatal(err)
	}
	lines, texts := svgShape(t, b)
	if len(lines) != 4 || len(lines[0]) != 2 {
		t.Fatalf("%d lines, the first of %d points; want 4 (no CPU) of 2", len(lines), len(lines[0]))
	}
	if strings.Contains(strings.Join(texts, " "), "CPU") {
		t.Fatal("a CPU axis without CPU measured")
	}
	if strings.Contains(string(b), "NaN") || strings.Contains(string(b), "Inf") {
		t.Fatalf("non-finite coordinates:\n%s", b)
	}
}

func TestPlotSweepRefusesNothingToDraw(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *SweepReport
	}{
		{"bad_no_steps", &SweepReport{}},
		{"bad_no_latency", func() *SweepReport {
			s := sweepOf([]float64{10}, []float64{10})
			s.Steps[0].LatencyMS = nil
			return s
		}()},
		{"bad_infinite_latency", func() *SweepReport {
			s := sweepOf([]float64{10}, []float64{10})
			s.Steps[0].LatencyMS["p99"] = math.Inf(1)
			return s
		}()},
		{"bad_nan_rate", sweepOf([]float64{math.NaN()}, []float64{10})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := plotSweep(tc.s); err == nil {
				t.Fatalf("plotted %d bytes, want an error", len(b))
			}
		})
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		name string
		top  float64
		want []float64
	}{
		{"thousands", 4123, []float64{0, 1000, 2000, 3000, 4000, 5000}},
		{"exact", 50, []float64{0, 10, 20, 30, 40, 50}},
		{"fractions", 0.73, []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}},
		{"bad_zero", 0, []float64{0, 1}},
		{"bad_nan", math.NaN(), []float64{0, 1}},
	} {
		t.Run("linear_"+tc.name, func(t *testing.T) {
			if got := linearTicks(tc.top); !slices.Equal(got, tc.want) {
				t.Fatalf("linearTicks(%v) = %v, want %v", tc.top, got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		lo, hi   float64
		want     []float64
		from, to float64
	}{
		{"two_decades", 2.5, 340, []float64{2, 5, 10, 20, 50, 100, 200, 500}, 2, 500},
		{"on_ticks", 1, 1000, []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}, 1, 1000},
		{"under_one", 0.3, 0.8, []float64{0.2, 0.5, 1}, 0.2, 1},
		{"one_value", 10, 10, []float64{10, 20}, 10, 20},
		{"bad_zero", 0, 5, []float64{1, 2}, 1, 2},
	} {
		t.Run("log_"+tc.name, func(t *testing.T) {
			got, from, to := logTicks(tc.lo, tc.hi)
			if !slices.Equal(got, tc.want) || from != tc.from || to != tc.to {
				t.Fatalf("logTicks(%v, %v) = %v from %v to %v, want %v from %v to %v", tc.lo, tc.hi, got, from, to, tc.want, tc.from, tc.to)
			}
		})
	}
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The plot's geometry, in SVG user units.
const (
	plotWidth    = 880
	plotHeight   = 620
	marginLeft   = 80
	marginRight  = 96
	marginTop    = 84
	marginBottom = 124 // the axis title, then the legend
	innerWidth   = plotWidth - marginLeft - marginRight
	innerHeight  = plotHeight - marginTop - marginBottom
)

type point struct{ x, y float64 }

// series is one line of the plot.
type series struct {
	label  string
	color  string
	dashed bool
	hollow bool // open markers
	right  bool // on the right (CPU) axis
	points []point
}

// plotSweep draws a sweep: p50 and p99 latency (log scale, left) against
// the offered and the achieved rate, and the servers' CPU per request
// (right) against the achieved rate. Steps with nothing measured are left
// out; a sweep with no latency to draw is an error.
func plotSweep(s *SweepReport) ([]byte, error) {
	var p50o, p99o, p50a, p99a, cpu []point
	for _, st := range s.Steps {
		r := st.BenchReport
		if r == nil || !positive(r.Rate) || !positive(r.RPS) || !positive(r.LatencyMS["p50"]) || !positive(r.LatencyMS["p99"]) {
			continue
		}
		p50, p99 := r.LatencyMS["p50"], r.LatencyMS["p99"]
		p50o, p99o = append(p50o, point{r.Rate, p50}), append(p99o, point{r.Rate, p99})
		p50a, p99a = append(p50a, point{r.RPS, p50}), append(p99a, point{r.RPS, p99})
		if positive(r.CPUPerReqUS) {
			cpu = append(cpu, point{r.RPS, r.CPUPerReqUS})
		}
	}
	if len(p50o) == 0 {
		return nil, errors.New("no step measured a latency to plot")
	}
	lines := []series{
		{label: "p99 against offered rate", color: "#c0392b", points: p99o},
		{label: "p99 against achieved rate", color: "#c0392b", dashed: true, hollow: true, points: p99a},
		{label: "p50 against offered rate", color: "#2471a3", points: p50o},
		{label: "p50 against achieved rate", color: "#2471a3", dashed: true, hollow: true, points: p50a},
	}
	if len(cpu) > 0 {
		lines = append(lines, series{label: "server CPU per request (right axis)", color: "#229954", right: true, points: cpu})
	}
	var xMax, yMin, yMax, cpuMax float64
	yMin = math.Inf(1)
	for _, l := range lines {
		for _, p := range l.points {
			xMax = max(xMax, p.x)
			if l.right {
				cpuMax = max(cpuMax, p.y)
			} else {
				yMin, yMax = min(yMin, p.y), max(yMax, p.y)
			}
		}
	}
	xTicks := linearTicks(xMax)
	yTicks, yLo, yHi := logTicks(yMin, yMax)
	cpuTicks := linearTicks(cpuMax)
	xOf := func(v float64) float64 { return marginLeft + v/xTicks[len(xTicks)-1]*innerWidth }
	yOf := func(v float64) float64 {
		return marginTop + innerHeight - (math.Log10(v)-math.Log10(yLo))/(math.Log10(yHi)-math.Log10(yLo))*innerHeight
	}
	cpuOf := func(v float64) float64 { return marginTop + innerHeight - v/cpuTicks[len(cpuTicks)-1]*innerHeight }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		plotWidth, plotHeight, plotWidth, plotHeight)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", plotWidth, plotHeight)
	heading, note := "latency", "latency from each request's due time (open loop)"
	if len(cpu) > 0 {
		heading, note = "latency and server CPU", note+"; server CPU from /proc, every --pid process together"
	}
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", marginLeft,
		text("signer-bench sweep: "+heading+" against the request rate"))
	fmt.Fprintf(&b, `<text x="%d" y="44">%s</text>`+"\n", marginLeft, text(title(s)))
	fmt.Fprintf(&b, `<text x="%d" y="62" fill="#555555">%s</text>`+"\n", marginLeft, text(note))

	// Grid and ticks.
	bottom, right := float64(marginTop+innerHeight), float64(marginLeft+innerWidth)
	for _, v := range xTicks {
		x := xOf(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", x, marginTop, x, bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, bottom+18, number(v))
	}
	for _, v := range yTicks {
		y := yOf(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", marginLeft, y, right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginLeft-8, y+4, number(v))
	}
	if len(cpu) > 0 {
		for _, v := range cpuTicks {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#229954">%s</text>`+"\n", right+8, cpuOf(v)+4, number(v))
		}
		fmt.Fprintf(&b, `<text transform="translate(%.1f %.1f) rotate(90)" text-anchor="middle" fill="#229954">%s</text>`+"\n",
			right+64, float64(marginTop)+innerHeight/2, text("server CPU per request (µs)"))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333333"/>`+"\n", marginLeft, marginTop, innerWidth, innerHeight)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", float64(marginLeft)+innerWidth/2, bottom+42, text("request rate (requests/s)"))
	fmt.Fprintf(&b, `<text transform="translate(%d %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n",
		marginLeft-52, float64(marginTop)+innerHeight/2, text("latency (ms, log scale)"))

	// The lines, their markers, and the legend.
	for i, l := range lines {
		yAt := yOf
		if l.right {
			yAt = cpuOf
		}
		pts := make([]string, len(l.points))
		for j, p := range l.points {
			pts[j] = fmt.Sprintf("%.1f,%.1f", xOf(p.x), yAt(p.y))
		}
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), l.color, dash)
		fill := l.color
		if l.hollow {
			fill = "#ffffff"
		}
		for _, p := range l.points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s" stroke="%s" stroke-width="1.5"/>`+"\n", xOf(p.x), yAt(p.y), fill, l.color)
		}
		// The legend, under the plot: two columns, p99 then p50, offered
		// then achieved.
		ly := bottom + 72 + 20*float64(i/2)
		lx := float64(marginLeft) + 320*float64(i%2)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+28, ly, l.color, dash)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s" stroke="%s" stroke-width="1.5"/>`+"\n", lx+14, ly, fill, l.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+36, ly+4, text(l.label))
	}
	b.WriteString("</svg>\n")
	return b.Bytes(), nil
}

func title(s *SweepReport) string {
	var mix []string
	for _, m := range slices.Sorted(mapKeys(s.Mix)) {
		mix = append(mix, fmt.Sprintf("%s×%d", m, s.Mix[m]))
	}
	return fmt.Sprintf("%s over %s, %d clients, %s s per step; closed-loop maximum %s requests/s",
		strings.Join(mix, " "), s.Protocol, s.Concurrency, number(s.StepDuration), number(math.Round(s.MaxRPS)))
}

func positive(v float64) bool { return v > 0 && !math.IsInf(v, 1) }

func text(s string) string { return html.EscapeString(s) }

func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// linearTicks are 0 and rising multiples of a step of 1, 2 or 5 times a
// power of ten, the last at or above top: 4 to 10 of them.
func linearTicks(top float64) []float64 {
	if !positive(top) {
		return []float64{0, 1}
	}
	step := math.Pow(10, math.Floor(math.Log10(top/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if top/(m*step) <= 8 {
			step *= m
			break
		}
	}
	n := int(math.Ceil(top/step - 1e-9))
	ticks := make([]float64, n+1)
	for i := range ticks {
		// Round away the float noise of i*step (0.30000000000000004).
		ticks[i] = roundTo(float64(i)*step, step)
	}
	return ticks
}

// logTicks are the numbers 1, 2 and 5 times a power of ten from the
// largest at or below lo to the smallest at or above hi, which are the
// axis's ends.
func logTicks(lo, hi float64) (ticks []float64, from, to float64) {
	if !positive(lo) || !positive(hi) || lo > hi {
		lo, hi = 1, 1
	}
	decade := math.Pow(10, math.Floor(math.Log10(lo)))
	for ; ; decade *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := roundTo(decade*m, decade)
			switch {
			case v <= lo*(1+1e-9):
				ticks = ticks[:0] // the largest at or below lo starts the axis
			case len(ticks) > 1 && ticks[len(ticks)-1] >= hi*(1-1e-9):
				return ticks, ticks[0], ticks[len(ticks)-1]
			}
			ticks = append(ticks, v)
		}
	}
}

// roundTo rounds v to the precision of unit (a power of ten, or 1, 2 or 5
// times one) so that its decimal form is short.
func roundTo(v, unit float64) float64 {
	digits := max(0, 1-int(math.Floor(math.Log10(unit))))
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

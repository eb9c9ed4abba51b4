// Package procs sizes GOMAXPROCS to the CPU a process is using.
//
// Go keeps GOMAXPROCS processors (Ps) ready to run goroutines, one per CPU
// by default. When work arrives at a process whose Ps are idle, the thread
// that takes it first wakes another to spin for a while looking for more:
// a bet that pays at saturation, where there is more, and is lost below
// it, where each request arriving alone costs a thread woken, spinning and
// put back to sleep. Measured on the signer's stack at half its maximum
// load, that lost bet is about an eighth of the servers' CPU per request;
// with one P per process it is gone, and the one P is ample while the
// process uses less than one CPU.
//
// Adapt keeps GOMAXPROCS to what the process uses: it samples the
// process's CPU time every Interval, and gives the process another P at
// once when its Ps are nearly busy, and takes one away only when the
// process has used well under the Ps that would remain for a whole
// second. So at saturation the process has every CPU, as before, and below
// it only as many Ps as it keeps busy.
package procs

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Interval is how often Adapt samples the process's CPU time.
const Interval = 100 * time.Millisecond

const (
	// grow: a P more when the process used more than this fraction of
	// its Ps over one interval.
	grow = 0.8
	// shrink: a P fewer when, for shrinkAfter intervals in a row, the
	// process used less than this fraction of one P fewer.
	shrink      = 0.5
	shrinkAfter = 10
)

// Next is the number of Ps after an interval in which the process used
// cores CPUs (CPU seconds per second) with p Ps, of at most max; low is how
// many intervals in a row, this one included, it used less than shrink of
// p-1 Ps. It grows by as many Ps as the use needs, at once, and shrinks by
// one, slowly.
func Next(p, max int, cores float64, low int) int {
	switch {
	case cores > grow*float64(p):
		want := int(cores/grow) + 1
		return min(max, want)
	case p > 1 && low >= shrinkAfter:
		return p - 1
	}
	return min(p, max)
}

// Options configure Adapt.
type Options struct {
	// Max is the most Ps; zero means GOMAXPROCS when Adapt starts (the
	// CPUs the process may use, cgroup limits included).
	Max int
	// OnChange, if set, is told each new GOMAXPROCS.
	OnChange func(procs int)
}

// Enabled reports whether Adapt would size GOMAXPROCS: not when the
// operator has set GOMAXPROCS in the environment.
func Enabled() bool { return os.Getenv("GOMAXPROCS") == "" }

// Adapt sizes GOMAXPROCS until ctx ends, then gives back Max. It starts at
// one P; it does nothing if !Enabled or Max is one.
func Adapt(ctx context.Context, opts Options) {
	max := opts.Max
	if max <= 0 {
		max = runtime.GOMAXPROCS(0)
	}
	if !Enabled() || max <= 1 {
		return
	}
	set := func(p int) {
		runtime.GOMAXPROCS(p)
		if opts.OnChange != nil {
			opts.OnChange(p)
		}
	}
	p := 1
	set(p)
	defer set(max)
	t := time.NewTicker(Interval)
	defer t.Stop()
	lastCPU, lastAt, low := cpuTime(), time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, cpu := time.Now(), cpuTime()
		wall := now.Sub(lastAt)
		if wall <= 0 || cpu < lastCPU {
			lastCPU, lastAt = cpu, now
			continue
		}
		cores := float64(cpu-lastCPU) / float64(wall)
		lastCPU, lastAt = cpu, now
		if p > 1 && cores < shrink*float64(p-1) {
			low++
		} else {
			low = 0
		}
		if n := Next(p, max, cores, low); n != p {
			p, low = n, 0
			set(p)
		}
	}
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Package procs sizes GOMAXPROCS to the CPU a process is using.
//
// Go keeps GOMAXPROCS processors (Ps) ready to run goroutines, one per CPU
// by default. When work arrives at a process whose Ps are idle, the thread
// that takes it first wakes another to spin for a while looking for more:
// a bet that pays at saturation, where there is more, and is lost below
// it, where each request arriving alone costs a thread woken, spinning and
// put back to sleep. Measured on the signer's stack below half its maximum
// load, that lost bet is a tenth to a third of the servers' CPU per
// request; with one P it is gone, and one P serves while the process uses
// under 80% of one CPU.
//
// Adapt keeps GOMAXPROCS to what the process uses. It samples the
// process's CPU time every Interval. When the Ps were nearly busy it gives
// back every CPU at once: a process can use no more CPU than it has Ps, so
// the sample cannot say how many more it needs, and a climb one P at a time
// would queue a burst behind too few. It takes one P away only after a
// whole second in which the process used under 80% of the Ps that would
// remain: the same bar as growing, so that a process settled between
// them (the enclave at half its maximum uses 0.65-0.75 of a CPU) ends at
// the fewer Ps, not at whichever it reached last; the second, against the
// tenth of one that grows it, is what keeps it from changing often. So
// at saturation the process has every CPU, as before, and below it only
// as many Ps as it keeps busy.
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
	// grow: every P back when the process used more than this fraction
	// of its Ps over one interval.
	grow = 0.8
	// shrink: a P fewer when, for shrinkAfter intervals in a row, the
	// process used less than this fraction of one P fewer. At 0.5 the
	// enclave at half its maximum load kept the two Ps it had grown to
	// in a burst, and paid 20-35 µs a request more for them than at one.
	shrink      = 0.8
	shrinkAfter = 10
)

// Next is the number of Ps after an interval in which the process used
// cores CPUs (CPU seconds per second) with p Ps, of at most max; low is how
// many intervals in a row, this one included, it used less than shrink of
// p-1 Ps. It grows to max at once and shrinks by one, slowly.
func Next(p, most int, cores float64, low int) int {
	switch {
	case cores > grow*float64(p):
		return most
	case p > 1 && low >= shrinkAfter:
		return min(p-1, most)
	}
	return max(1, min(p, most))
}

// Enabled reports whether Adapt would size GOMAXPROCS: not when the
// operator has set GOMAXPROCS in the environment.
func Enabled() bool { return os.Getenv("GOMAXPROCS") == "" }

// Adapt sizes GOMAXPROCS until ctx ends, then gives back the most. It
// starts at one P. It does nothing if !Enabled or the most is one, and
// gives back the most and stops if the process's CPU time cannot be read.
func Adapt(ctx context.Context) {
	if !Enabled() {
		return
	}
	t := time.NewTicker(Interval)
	defer t.Stop()
	loop{sample: cpuTime, tick: t.C, start: time.Now()}.run(ctx)
}

// loop is Adapt with its clock and its CPU samples given, for tests.
type loop struct {
	// max, if positive, is the most Ps instead of Go's default, and
	// onChange, if set, is told each new GOMAXPROCS: both for tests.
	max      int
	onChange func(procs int)
	sample   func() (time.Duration, bool)
	tick     <-chan time.Time // the time of each sample
	start    time.Time
	// ticked, if set, is called once each tick has been dealt with.
	ticked func()
}

func (l loop) run(ctx context.Context) {
	// most is the most Ps now: l.max, or Go's default, which the
	// runtime keeps up to date with the process's cgroup limits only while
	// nothing has set GOMAXPROCS; so the default is put back, not set,
	// whenever the process should have every CPU.
	most := func() int {
		n := l.max
		if n > 0 {
			runtime.GOMAXPROCS(n)
		} else {
			runtime.SetDefaultGOMAXPROCS()
			n = runtime.GOMAXPROCS(0)
		}
		gate.choose(n, n)
		return n
	}
	told := 0
	tell := func(p int) {
		if l.onChange != nil && p != told {
			l.onChange(p)
		}
		told = p
	}
	top := most()
	defer func() {
		tell(most())
		gate.choose(0, 0)
	}()
	lastCPU, ok := l.sample()
	if top <= 1 || !ok {
		return
	}
	p := 1
	gate.choose(p, top)
	tell(p)
	lastAt, low := l.start, 0
	// handle deals with the sample at a tick; false ends the loop.
	handle := func(at time.Time) bool {
		cpu, ok := l.sample()
		if !ok {
			return false // every CPU, and no more sizing: see the deferred most
		}
		wall := at.Sub(lastAt)
		if wall <= 0 || cpu < lastCPU {
			lastCPU, lastAt = cpu, at
			return true
		}
		cores := float64(cpu-lastCPU) / float64(wall)
		lastCPU, lastAt = cpu, at
		if p > 1 && cores < shrink*float64(p-1) {
			low++
		} else {
			low = 0
		}
		n := Next(p, top, cores, low)
		if n == p {
			return true
		}
		if n == top {
			top = most()
			n = top
		} else {
			gate.choose(n, top)
		}
		p, low = n, 0
		tell(p)
		return true
	}
	for {
		var at time.Time
		select {
		case <-ctx.Done():
			return
		case at = <-l.tick:
		}
		more := handle(at)
		if l.ticked != nil {
			l.ticked()
		}
		if !more {
			return
		}
	}
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

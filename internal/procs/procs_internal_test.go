package procs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// driven runs the loop on a clock and CPU samples the test gives: each
// step adds cores×Interval of CPU time and one tick.
type driven struct {
	t      *testing.T
	tick   chan time.Time
	at     time.Time
	cpu    atomic.Int64
	fail   atomic.Bool
	seen   chan int
	ticked chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func drive(t *testing.T, most int) *driven {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	d := &driven{t: t, tick: make(chan time.Time), at: time.Unix(1e9, 0), seen: make(chan int, 1024), ticked: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	l := loop{
		max:      most,
		onChange: func(p int) { d.seen <- p },
		sample:   func() (time.Duration, bool) { return time.Duration(d.cpu.Load()), !d.fail.Load() },
		tick:     d.tick,
		start:    d.at,
		ticked:   func() { d.ticked <- struct{}{} },
	}
	go func() { defer close(d.done); l.run(ctx) }()
	t.Cleanup(d.stop)
	if p := d.next(); p != 1 {
		t.Fatalf("started at %d Ps, want 1", p)
	}
	return d
}

// step runs one interval at cores and returns GOMAXPROCS after it.
func (d *driven) step(cores float64) int {
	d.cpu.Add(int64(cores * float64(Interval)))
	d.at = d.at.Add(Interval)
	select {
	case d.tick <- d.at:
	case <-d.done:
		return runtime.GOMAXPROCS(0)
	}
	<-d.ticked // the loop has dealt with it
	return runtime.GOMAXPROCS(0)
}

func (d *driven) next() int {
	select {
	case p := <-d.seen:
		return p
	case <-time.After(10 * time.Second):
		d.t.Fatal("no change told within 10s")
		return 0
	}
}

func (d *driven) stop() {
	d.cancel()
	<-d.done
}

func TestLoopGivesEveryCPUAtOnceWhenBusy(t *testing.T) {
	d := drive(t, 8)
	if p := d.step(0.95); p != 8 {
		t.Fatalf("after one busy interval at one P: %d Ps, want all 8", p)
	}
}

func TestLoopShrinksOneAtATimeAfterASecond(t *testing.T) {
	d := drive(t, 3)
	d.step(1)
	for want := 3; want > 1; want-- {
		for i := range shrinkAfter - 1 {
			if p := d.step(0.1); p != want {
				t.Fatalf("%d idle intervals at %d Ps: %d Ps, want %d still", i+1, want, p, want)
			}
		}
		if p := d.step(0.1); p != want-1 {
			t.Fatalf("a second idle at %d Ps: %d Ps, want %d", want, p, want-1)
		}
	}
	for range 3 * shrinkAfter {
		if p := d.step(0); p != 1 {
			t.Fatalf("idle at one P: %d Ps, want 1", p)
		}
	}
}

// TestLoopSettlesAtTheFewerPs: a process using 0.7 of a CPU is under the
// bar to grow from one P and under the bar to keep two, so wherever a
// burst left it, after a second it has one P, and it stays there.
func TestLoopSettlesAtTheFewerPs(t *testing.T) {
	d := drive(t, 2)
	if p := d.step(1); p != 2 {
		t.Fatalf("after a busy interval: %d Ps, want 2", p)
	}
	for range shrinkAfter - 1 {
		d.step(0.7)
	}
	if p := d.step(0.7); p != 1 {
		t.Fatalf("a second at 0.7 of a CPU with two Ps: %d Ps, want 1", p)
	}
	for range 3 * shrinkAfter {
		if p := d.step(0.7); p != 1 {
			t.Fatalf("0.7 of a CPU at one P: %d Ps, want 1", p)
		}
	}
}

func TestLoopOneBusyIntervalRestartsTheCount(t *testing.T) {
	d := drive(t, 4)
	d.step(1)
	for range shrinkAfter - 1 {
		d.step(0.1)
	}
	d.step(2.6) // not idle enough for three Ps, not busy enough to grow
	for range shrinkAfter - 1 {
		if p := d.step(0.1); p != 4 {
			t.Fatalf("%d Ps within a second of a busy interval, want 4", p)
		}
	}
	if p := d.step(0.1); p != 3 {
		t.Fatalf("%d Ps after a whole idle second, want 3", p)
	}
}

func TestLoopGivesEveryCPUBackWhenCPUTimeCannotBeRead(t *testing.T) {
	d := drive(t, 4)
	d.fail.Store(true)
	d.step(0)
	<-d.done
	if p := runtime.GOMAXPROCS(0); p != 4 {
		t.Fatalf("after a failed sample: %d Ps, want all 4", p)
	}
}

func TestLoopGivesEveryCPUBackWhenItEnds(t *testing.T) {
	d := drive(t, 4)
	d.stop()
	if p := runtime.GOMAXPROCS(0); p != 4 {
		t.Fatalf("after the loop: %d Ps, want all 4", p)
	}
}

// TestLoopAWaveOfLoadChangesItRarely: load that turns busy the moment the
// loop has shrunk, the worst for it, changes GOMAXPROCS at most twice per
// shrinkAfter+1 intervals: each change costs a stop of the world, so a
// load pattern must not be able to make them frequent.
func TestLoopAWaveOfLoadChangesItRarely(t *testing.T) {
	d := drive(t, 2)
	const steps = 110
	p := d.step(1)
	for range steps {
		cores := 0.0
		if p == 1 {
			cores = 1
		}
		p = d.step(cores)
	}
	d.stop()
	n := 0
	for {
		select {
		case <-d.seen:
			n++
			continue
		default:
		}
		break
	}
	if limit := 2*(steps+1)/(shrinkAfter+1) + 2; n > limit {
		t.Fatalf("%d changes in %d intervals, want at most %d", n, steps+1, limit)
	}
}

// TestAdaptFollowsTheLoad: on the real clock, CPU time and runtime, an idle
// process is left one P, a process keeping two CPUs busy gets both back,
// and when the loop ends GOMAXPROCS is what it was.
func TestAdaptFollowsTheLoad(t *testing.T) {
	const most = 2
	before := runtime.GOMAXPROCS(most)
	defer runtime.GOMAXPROCS(before)
	ticker := time.NewTicker(Interval)
	defer ticker.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop{max: most, sample: cpuTime, tick: ticker.C, start: time.Now()}.run(ctx)
	}()
	waitFor(t, "one P while idle", func() bool { return runtime.GOMAXPROCS(0) == 1 })
	var stop atomic.Bool
	for range most {
		go func() {
			for !stop.Load() {
			}
		}()
	}
	waitFor(t, "both Ps under load", func() bool { return runtime.GOMAXPROCS(0) == most })
	stop.Store(true)
	waitFor(t, "one P again once the load stops", func() bool { return runtime.GOMAXPROCS(0) == 1 })
	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != most {
		t.Fatalf("after the loop: GOMAXPROCS %d, want %d back", got, most)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s (GOMAXPROCS %d)", what, runtime.GOMAXPROCS(0))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

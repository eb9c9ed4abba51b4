package procs

import (
	"runtime"
	"testing"
)

// inside runs Blocking in a goroutine and returns what GOMAXPROCS was
// inside it and a func that lets the call return and waits for it.
func inside(t *testing.T) (procs int, release func()) {
	t.Helper()
	in, out, done := make(chan int), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		Blocking(func() {
			in <- runtime.GOMAXPROCS(0)
			<-out
		})
	}()
	return <-in, func() { close(out); <-done }
}

// wantProcs fails the test unless GOMAXPROCS is want, saying when and why.
func wantProcs(t *testing.T, want int, when, why string) {
	t.Helper()
	if p := runtime.GOMAXPROCS(0); p != want {
		t.Fatalf("%s: %d Ps, want %s", when, p, why)
	}
}

func TestBlockingHoldsASecondPAndGivesItBack(t *testing.T) {
	drive(t, 2) // at one P
	p, release := inside(t)
	if p != 2 {
		t.Fatalf("inside a blocking call at one P: %d Ps, want 2", p)
	}
	release()
	wantProcs(t, 1, "after the call", "Adapt's 1 back")
}

func TestBlockingOverlappingCallsKeepTheSecondPUntilTheLast(t *testing.T) {
	drive(t, 2)
	_, first := inside(t)
	p, second := inside(t)
	if p != 2 {
		t.Fatalf("second call: %d Ps, want 2", p)
	}
	first()
	wantProcs(t, 2, "one call still in flight", "2")
	second()
	wantProcs(t, 1, "after both", "1")
}

func TestBlockingOutlastsAShrink(t *testing.T) {
	d := drive(t, 2)
	if p := d.step(1); p != 2 {
		t.Fatalf("after a busy interval: %d Ps, want 2", p)
	}
	_, release := inside(t)
	for range shrinkAfter {
		d.step(0.1)
	}
	wantProcs(t, 2, "Adapt shrank during a blocking call", "2 until it returns")
	release()
	wantProcs(t, 1, "after the call", "the 1 Adapt chose meanwhile")
}

func TestBlockingWithoutAdaptChangesNothing(t *testing.T) {
	before := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(before)
	p, release := inside(t)
	release()
	if p != 1 {
		t.Fatalf("GOMAXPROCS fixed at 1 without Adapt: %d inside a blocking call, want 1", p)
	}
}

func TestBlockingAtOneCPUChangesNothing(t *testing.T) {
	d := drive(t, 1)
	_ = d
	p, release := inside(t)
	release()
	if p != 1 {
		t.Fatalf("most of 1: %d Ps inside a blocking call, want 1", p)
	}
}

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

func TestBlockingHoldsASecondPAndGivesItBack(t *testing.T) {
	drive(t, 2) // at one P
	p, release := inside(t)
	if p != 2 {
		t.Fatalf("inside a blocking call at one P: %d Ps, want 2", p)
	}
	release()
	if p := runtime.GOMAXPROCS(0); p != 1 {
		t.Fatalf("after the call: %d Ps, want Adapt's 1 back", p)
	}
}

func TestBlockingOverlappingCallsKeepTheSecondPUntilTheLast(t *testing.T) {
	drive(t, 2)
	_, first := inside(t)
	p, second := inside(t)
	if p != 2 {
		t.Fatalf("second call: %d Ps, want 2", p)
	}
	first()
	if p := runtime.GOMAXPROCS(0); p != 2 {
		t.Fatalf("one call still in flight: %d Ps, want 2", p)
	}
	second()
	if p := runtime.GOMAXPROCS(0); p != 1 {
		t.Fatalf("after both: %d Ps, want 1", p)
	}
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
	if p := runtime.GOMAXPROCS(0); p != 2 {
		t.Fatalf("Adapt shrank during a blocking call: %d Ps, want 2 until it returns", p)
	}
	release()
	if p := runtime.GOMAXPROCS(0); p != 1 {
		t.Fatalf("after the call: %d Ps, want the 1 Adapt chose meanwhile", p)
	}
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

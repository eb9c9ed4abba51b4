package procs

import (
	"runtime"
	"sync"
)

// Blocking runs f, a call that blocks its thread in the kernel (the
// enclave's NSM ioctls), with at least two Ps while Adapt is sizing
// GOMAXPROCS and the process may have two.
//
// A goroutine in a blocking system call keeps its P until sysmon hands
// the P on, which under SysmonAwake is after one to two of its 10 ms
// polls. With one P that stops every other goroutine meanwhile: each
// attestation a caller asks for would hold back every signature for as
// long as the NSM takes, up to 20 ms. A second P lets the other
// goroutines run, and is given back when the last such call returns.
// Each change of GOMAXPROCS stops the world for a moment; a call made
// while the process already has two Ps or more changes nothing.
func Blocking(f func()) {
	gate.hold(1)
	defer gate.hold(-1)
	f()
}

// gate is the one place GOMAXPROCS is changed while Adapt runs: Adapt's
// choice, raised to two while a Blocking call is in flight.
var gate procsGate

type procsGate struct {
	mu sync.Mutex
	// chosen is what Adapt last chose, and most its most; 0 when Adapt
	// is not sizing GOMAXPROCS (then Blocking changes nothing).
	chosen, most int
	// blocked is how many Blocking calls are in flight.
	blocked int
}

func (g *procsGate) hold(delta int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.blocked += delta
	g.apply()
}

// choose records Adapt's choice of p Ps, of at most most, and applies it;
// choose(0, 0) when Adapt stops.
func (g *procsGate) choose(p, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.chosen, g.most = p, most
	g.apply()
}

func (g *procsGate) apply() {
	if g.chosen == 0 {
		return
	}
	want := g.chosen
	if g.blocked > 0 {
		want = max(want, min(2, g.most))
	}
	if runtime.GOMAXPROCS(0) != want {
		runtime.GOMAXPROCS(want)
	}
}

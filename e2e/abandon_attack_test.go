package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/client"
)

// A caller of the weakest role against every other caller: calls it gives
// up on are still held by the enclave until it answers them, so a parent
// that counted them free would send other callers' calls to a connection
// the enclave holds full, and they would come back overloaded while the
// pool's other connections had room.

// waitMetric waits until the parent's unlabelled metric name satisfies ok,
// and returns its value.
func waitMetric(t *testing.T, url, name string, ok func(float64) bool, within time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	var v float64
	var err error
	for time.Now().Before(deadline) {
		if v, err = metric(url, name); err == nil && ok(v) {
			return v
		}
		time.Sleep(10 * time.Millisecond)
	}
	r, _ := metric(url, "signer_parent_requests_in_flight")
	t.Fatalf("%s: %v (err %v) after %s; requests in flight %v", name, v, err, within, r)
	return 0
}

// stopped waits until every thread of pid is stopped: kill(SIGSTOP)
// returns before they are, and an enclave still running answers calls the
// test means it to hold.
func stopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		all := len(tasks) > 0
		for _, task := range tasks {
			b, err := os.ReadFile(task)
			// The state follows the command's closing parenthesis.
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				all = false
				break
			}
		}
		if all {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("enclave %d not stopped 5 s after SIGSTOP", pid)
}

// TestAbandonedCallsDoNotCrowdOutOtherCallers: while the enclave is slow
// (stopped, here, so that the order of events is fixed), a worker sends as
// many calls as one channel connection carries and gives them all up. A
// broker's calls sent next must all be answered once the enclave runs
// again: none may be refused overloaded by a connection the enclave still
// holds full of the abandoned calls.
func TestAbandonedCallsDoNotCrowdOutOtherCallers(t *testing.T) {
	// One connection carries 64 calls, at both ends: with 256 the
	// abandoned calls and the victim's do not fit in the socket's buffer
	// together, and whether the enclave reads the victim's before its
	// workers have answered enough abandoned ones is a race (the attack
	// won it in one run of four with the defaults).
	const perConn = 64
	e := newEnvConfigured(t, func(cfg map[string]any) {
		limits, _ := cfg["limits"].(map[string]any)
		if limits == nil {
			limits = map[string]any{}
		}
		limits["in_flight"] = perConn
		cfg["limits"] = limits
	}, []string{"--in-flight", fmt.Sprint(perConn), "--timeout", "30s"}) // longer than any wait below
	victim := e.client("broker")
	// Two callers' connections, as two attacking processes would use.
	attackers := []*client.Client{e.client("worker"), e.client("worker")}
	for _, c := range append([]*client.Client{victim}, attackers...) {
		if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil { // attested before the enclave stops
			t.Fatal(err)
		}
	}
	metrics := e.metricsURL()
	const inFlight = "signer_parent_channel_calls_in_flight"
	const requests = "signer_parent_requests_in_flight"
	pid := e.enclave.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped(t, pid)
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)

	// The attack: one connection's worth of calls, each given up once
	// the parent has sent it to the enclave.
	n := perConn
	actx, abandon := context.WithCancel(context.Background())
	defer abandon()
	var attacks sync.WaitGroup
	for i := range n {
		attacks.Add(1)
		go func() {
			defer attacks.Done()
			if _, err := attackers[i%len(attackers)].DeriveAddress(actx, omniHex, 0); err != nil && actx.Err() == nil {
				t.Errorf("attacker call failed before it was given up: %v", err)
			}
		}()
	}
	waitMetric(t, metrics, inFlight, func(v float64) bool { return v == float64(n) }, 10*time.Second)
	abandon()
	attacks.Wait()
	waitMetric(t, metrics, requests, func(v float64) bool { return v == 0 }, 10*time.Second)
	held, _ := metric(metrics, inFlight)

	// The victim's calls, sent while the enclave still holds the
	// abandoned ones.
	const m = 32
	var calls sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	vctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range m {
		calls.Add(1)
		go func() {
			defer calls.Done()
			if _, err := victim.DeriveAddress(vctx, omniHex, 0); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprint(err))
			}
		}()
	}
	waitMetric(t, metrics, inFlight, func(v float64) bool { return v == held+m }, 10*time.Second)
	resume()
	calls.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d calls of another caller failed after %d abandoned calls, the first: %v", f, m, n, firstErr.Load())
	}
	// Every slot comes back once the enclave has answered.
	waitMetric(t, metrics, inFlight, func(v float64) bool { return v == 0 }, 10*time.Second)
	t.Logf("%d abandoned calls, %.0f of them still held by the parent for the enclave; %d calls of another caller all answered", n, held, m)
}

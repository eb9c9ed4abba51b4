//go:build soak

package e2e

import (
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/client"
)

// TestSoak (make soak) loads the stack at 70% of the throughput it measures
// first, for SOAK_DURATION (default 10m), restarting the enclave with
// SIGKILL every SOAK_RESTART_EVERY (default 2m). It fails on any error other
// than the parent's 503 while the enclave is down, and on memory or
// goroutines that grow instead of staying flat. The keyring is sealed in
// the parent's state store: before each restart the soak rotates to a new
// epoch, and after it every epoch must derive the same addresses as before.
func TestSoak(t *testing.T) {
	duration := envDuration(t, "SOAK_DURATION", 10*time.Minute)
	restartEvery := envDuration(t, "SOAK_RESTART_EVERY", 2*time.Minute)
	e := newSealedEnv(t, "", "")
	c := e.client("broker")
	admin := e.client("admin")
	addresses := func() []string {
		st, err := admin.KeyStatus(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for ep := uint32(1); ep <= st.Epoch; ep++ {
			a, err := c.DeriveAddress(ctx(t), omniHex, ep)
			if err != nil {
				t.Fatalf("derive-address epoch %d: %v", ep, err)
			}
			out = append(out, a.Address)
		}
		return out
	}
	metricsURL := e.metricsURL()

	maximum := measureMax(t, c, 16, 10*time.Second)
	rate := 0.7 * maximum
	t.Logf("maximum %.0f req/s; soaking at %.0f req/s for %s, enclave restart every %s", maximum, rate, duration, restartEvery)

	var ok, expected, unexpected atomic.Int64
	var firstUnexpected atomic.Value
	// Request n is due at loadStart + n/rate, as signer-bench does it: a
	// shared ticker drops the ticks its readers take late, and the soak
	// would run below the rate it names.
	interval := time.Duration(float64(time.Second) / rate)
	loadStart := time.Now()
	var slot atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due := loadStart.Add(time.Duration(slot.Add(1)-1) * interval)
				select {
				case <-stop:
					return
				case <-time.After(time.Until(due)):
				}
				_, err := c.DevSignMessage(ctx(t), omniHex, "0x68656c6c6f")
				var pe *client.ParentError
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &pe) && pe.Status == 503:
					expected.Add(1)
				default:
					if unexpected.Add(1) == 1 {
						firstUnexpected.Store(err.Error())
					}
				}
			}
		}()
	}

	type sample struct {
		at                    time.Duration
		parentRSS, enclaveRSS float64
		goroutines            float64
		ok                    int64
	}
	var samples []sample
	start := time.Now()
	nextRestart := restartEvery
	for elapsed := time.Duration(0); elapsed < duration; elapsed = time.Since(start) {
		time.Sleep(10 * time.Second)
		s := sample{at: time.Since(start).Round(time.Second), ok: ok.Load()}
		s.parentRSS, _ = rssMiB(e.parentP.cmd.Process.Pid)
		s.enclaveRSS, _ = rssMiB(e.enclave.cmd.Process.Pid)
		s.goroutines, _ = metric(metricsURL, "go_goroutines")
		samples = append(samples, s)
		t.Logf("%6s  ok %8d  503 %5d  unexpected %d  parent %.1f MiB %4.0f goroutines  enclave %.1f MiB",
			s.at, s.ok, expected.Load(), unexpected.Load(), s.parentRSS, s.goroutines, s.enclaveRSS)
		if time.Since(start) >= nextRestart && time.Since(start) < duration {
			if _, err := admin.RotateKeys(ctx(t)); err != nil {
				t.Fatalf("rotation under load: %v", err)
			}
			before := addresses()
			e.enclave.kill()
			e.startEnclave()
			e.waitReady()
			if after := addresses(); !slices.Equal(after, before) {
				t.Fatalf("after restart the epochs derive %v, before %v", after, before)
			}
			t.Logf("restarted: %d epochs unsealed, same addresses", len(before))
			nextRestart += restartEvery
		}
	}
	close(stop)
	wg.Wait()
	total := ok.Load() + expected.Load() + unexpected.Load()
	t.Logf("done: %d ok, %d expected 503s during restarts, %d unexpected errors; %.0f req/s achieved of %.0f",
		ok.Load(), expected.Load(), unexpected.Load(), float64(total)/time.Since(loadStart).Seconds(), rate)
	if n := unexpected.Load(); n != 0 {
		t.Errorf("%d unexpected errors, first: %v", n, firstUnexpected.Load())
	}
	if len(samples) < 4 {
		t.Fatalf("only %d samples", len(samples))
	}
	// Flat: the last quarter does not exceed the first quarter (after the
	// first sample, the warm-up) by more than half, plus a small constant.
	q := len(samples) / 4
	first, last := samples[1:1+q], samples[len(samples)-q:]
	peak := func(ss []sample, f func(sample) float64) float64 {
		m := 0.0
		for _, s := range ss {
			m = max(m, f(s))
		}
		return m
	}
	for name, f := range map[string]func(sample) float64{
		"parent RSS":        func(s sample) float64 { return s.parentRSS },
		"enclave RSS":       func(s sample) float64 { return s.enclaveRSS },
		"parent goroutines": func(s sample) float64 { return s.goroutines },
	} {
		a, b := peak(first, f), peak(last, f)
		if b > 1.5*a+16 {
			t.Errorf("%s grew from %.1f to %.1f", name, a, b)
		}
	}
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// measureMax runs a closed loop for d and returns requests per second.
func measureMax(t *testing.T, c *client.Client, workers int, d time.Duration) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := c.DevSignMessage(ctx(t), omniHex, "0x68656c6c6f"); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

package client

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestBackoffDoublesOnFailedProbes: a replica that fails is left alone
// for MinBackoff from its last failure; more failures within it (calls
// that were in flight) do not double it; each failed probe after it
// doubles it, up to MaxBackoff; an answer resets it.
func TestBackoffDoublesOnFailedProbes(t *testing.T) {
	const min, max = time.Second, 4 * time.Second
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := &replica{ep: &endpoint{raw: "https://127.0.0.1:8443"}}
	step := func(name string, at time.Duration, fail bool, wantBackoff time.Duration) {
		t.Helper()
		if fail {
			r.fail(now.Add(at), min, max, nil, nil)
		} else {
			r.ok(nil)
		}
		if r.backoff != wantBackoff || r.down != fail {
			t.Fatalf("%s: backoff %s, down %v; want %s, %v", name, r.backoff, r.down, wantBackoff, fail)
		}
		if fail && !r.downUntil.Equal(now.Add(at+wantBackoff)) {
			t.Fatalf("%s: down until %s", name, r.downUntil)
		}
	}
	step("first_failure", 0, true, min)
	step("in_flight_failure", 500*time.Millisecond, true, min)
	if r.usable(now.Add(1499*time.Millisecond)) || !r.usable(now.Add(1500*time.Millisecond)) {
		t.Fatal("usable within its backoff, or not after it")
	}
	step("failed_probe", 2*min, true, 2*min)
	step("failed_probe_again", 5*min, true, max)
	step("capped", 10*min, true, max)
	step("answered", 15*min, false, 0)
	step("fails_again", 16*min, true, min)
	// One probe at a time.
	r.probing = true
	if r.usable(now.Add(time.Hour)) {
		t.Fatal("a second probe while one is under way")
	}
}

// FuzzParseEndpoint: no input panics; an accepted endpoint is https with a
// host, and parses again to itself.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"https://127.0.0.1:8443", "https://signer.internal:8443/", "https://[::1]:8443/base",
		"http://x", "https://", "https://u@h", "https://h?x", "https://h#f", "127.0.0.1:8443", "https://h:0x50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ep, err := parseEndpoint(raw)
		if err != nil {
			return
		}
		if ep.scheme != "https" || ep.host == "" || ep.port == "" {
			t.Fatalf("%q accepted as %+v", raw, ep)
		}
		again, err := parseEndpoint(ep.raw)
		if err != nil || again.raw != ep.raw || again.host != ep.host || again.port != ep.port || again.resolve != ep.resolve {
			t.Fatalf("%q: %+v parses again to %+v, %v", raw, ep, again, err)
		}
	})
}

// BenchmarkFleetPick is the cost of choosing a replica, per call, with
// every core calling.
func BenchmarkFleetPick(b *testing.B) {
	f := &fleet{newReplica: func(ep *endpoint, addr string) *replica { return &replica{ep: ep, addr: addr} }}
	for i := range 3 {
		ep, err := parseEndpoint("https://127.0.0.1:" + strconv.Itoa(8443+i))
		if err != nil {
			b.Fatal(err)
		}
		f.endpoints = append(f.endpoints, ep)
	}
	f.build()
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := f.pick(context.Background(), now, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			r.inFlight.Add(1)
			r.inFlight.Add(-1)
		}
	})
}

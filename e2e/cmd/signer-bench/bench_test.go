package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
)

// fakeOpener refuses the answers whose index it names, in the ways the
// client does, and records every index it was asked to open.
type fakeOpener struct {
	index  map[*client.Answer]int
	refuse map[int]error
	opened chan int
}

func (f *fakeOpener) Open(_ context.Context, _ *client.Request, a *client.Answer, _ any) error {
	i := f.index[a]
	f.opened <- i
	return f.refuse[i]
}

func TestVerifyAnswersCountsEveryRefusalByCode(t *testing.T) {
	const n = 50
	reqs := make([]*client.Request, n)
	answers := make([]*client.Answer, n)
	f := &fakeOpener{index: map[*client.Answer]int{}, opened: make(chan int, n), refuse: map[int]error{
		3:  fmt.Errorf("%w: bad signature", client.ErrResponse),
		17: api.Errorf(api.CodeReplayed, "nonce already used"),
		18: api.Errorf(api.CodeReplayed, "nonce already used"),
		40: &client.ParentError{Status: 503, Code: "enclave_unavailable"},
	}}
	for i := range n {
		reqs[i] = &client.Request{}
		if i == 7 || i == 8 { // never answered: counted as transport errors during the window
			continue
		}
		answers[i] = &client.Answer{}
		f.index[answers[i]] = i
	}
	ok, errs := verifyAnswers(context.Background(), f, reqs, answers)
	close(f.opened)
	seen := map[int]bool{}
	for i := range f.opened {
		if seen[i] {
			t.Fatalf("answer %d opened twice", i)
		}
		seen[i] = true
	}
	if len(seen) != n-2 || seen[7] || seen[8] {
		t.Fatalf("opened %d answers (7: %v, 8: %v), want every one received", len(seen), seen[7], seen[8])
	}
	want := map[string]int64{"bad_response": 1, string(api.CodeReplayed): 2, "parent:enclave_unavailable": 1}
	if ok != n-2-4 || !maps.Equal(errs, want) {
		t.Fatalf("ok %d errors %v, want %d and %v", ok, errs, n-2-4, want)
	}
}

func TestSignAheadCount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		d       time.Duration
		rate    float64
		floorUS float64
		min     int
	}{
		{"fixed rate: one per due time", 20 * time.Second, 1500, 300, 30000},
		{"fixed rate: fractional", 3 * time.Second, 40.5, 300, 122},
	} {
		if got := signAheadCount(tc.d, tc.rate, tc.floorUS); got < tc.min || got > tc.min+2 {
			t.Fatalf("%s: %d, want %d..%d", tc.name, got, tc.min, tc.min+2)
		}
	}
	// Closed loop: as many as every core could serve at the floor's cost.
	got := signAheadCount(10*time.Second, 0, 250)
	if cores := float64(got) * 250e-6 / 10; cores < float64(runtime.NumCPU()) && got < maxSignedAhead {
		t.Fatalf("closed loop: %d requests are %.2f cores' worth at the floor", got, cores)
	}
	for _, tc := range []struct {
		name    string
		d       time.Duration
		rate    float64
		floorUS float64
	}{
		{"bad_closed_loop_over_memory_bound", time.Hour, 0, 1},
		{"bad_rate_over_memory_bound", time.Hour, 1e6, 300},
		{"bad_no_floor", time.Hour, 0, 0},
	} {
		if got := signAheadCount(tc.d, tc.rate, tc.floorUS); got != maxSignedAhead {
			t.Fatalf("%s: %d, want the bound %d", tc.name, got, maxSignedAhead)
		}
	}
}

// TestReplicaDelta: a load's share of each replica is the difference of
// the client's counters, a replica new since the first snapshot counted
// from zero.
func TestReplicaDelta(t *testing.T) {
	before := client.Stats{Replicas: []client.ReplicaStats{
		{Endpoint: "https://a:1", Requests: 10, Failures: 1, Attestations: 1},
		{Endpoint: "https://b:1", Address: "10.0.0.2", Requests: 5},
	}}
	after := client.Stats{Replicas: []client.ReplicaStats{
		{Endpoint: "https://a:1", Requests: 30, Failures: 2, Retries: 3, Attestations: 1},
		{Endpoint: "https://b:1", Address: "10.0.0.2", Requests: 25, Refused: 1},
		{Endpoint: "https://b:1", Address: "10.0.0.3", Requests: 4, Attestations: 1},
	}}
	got := replicaDelta(before, after)
	want := []ReplicaReport{
		{Endpoint: "https://a:1", Requests: 20, Failures: 1, Retries: 3},
		{Endpoint: "https://b:1", Address: "10.0.0.2", Requests: 20, Refused: 1},
		{Endpoint: "https://b:1", Address: "10.0.0.3", Requests: 4, Attestations: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delta %+v, want %+v", got, want)
	}
}

// TestSamplePartLeavesTheWarmUpUncounted: a slice runs one operation
// untimed before those it counts, so a short slice counts neither the
// first, cold operation nor its CPU time; a part's error ends the slice
// and counts nothing.
func TestSamplePartLeavesTheWarmUpUncounted(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the floor is timed on Linux's thread CPU clock")
	}
	calls := 0
	m := &floorMeter{cpu: map[string]time.Duration{}, ops: map[string]int{}, parts: map[string]func() error{
		"counted": func() error {
			calls++
			if calls == 1 { // the warm-up: 20 ms of this thread's CPU
				start, err := threadCPU()
				for now := start; err == nil && now-start < 20*time.Millisecond; now, err = threadCPU() {
				}
				return err
			}
			return nil
		},
		"failing": func() error { return errors.New("part failed") },
	}}
	if err := m.samplePart("counted", 0); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || m.ops["counted"] != 1 || m.cpu["counted"] >= 10*time.Millisecond {
		t.Fatalf("%d calls, %d counted in %v: want the warm-up and one counted operation, without the warm-up's 20 ms", calls, m.ops["counted"], m.cpu["counted"])
	}
	if err := m.samplePart("failing", time.Millisecond); err == nil || m.ops["failing"] != 0 || m.cpu["failing"] != 0 {
		t.Fatalf("failing part: err %v, %d ops, %v: want the error and nothing counted", err, m.ops["failing"], m.cpu["failing"])
	}
	if _, _, ok := m.floor(); ok {
		t.Fatal("floor reported with a part never counted")
	}
}

// TestProcessWakesCountsThisProcess: the counters of a live process rise
// with its own reads, writes and switches; a process that is gone is an
// error, not zeros.
func TestProcessWakesCountsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the wake-up counters read Linux's /proc")
	}
	pid := os.Getpid()
	before, err := processWakes(pid)
	if err != nil {
		t.Fatalf("processWakes(self): %+v, %v", before, err)
	}
	dir := t.TempDir()
	for i := range 20 {
		name := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(name, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile(name); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // a voluntary switch
	}
	after, err := processWakes(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.reads-before.reads < 20 || after.writes-before.writes < 20 || after.switches-before.switches < 20 {
		t.Fatalf("after 20 writes, reads and sleeps: %+v then %+v", before, after)
	}
	if _, err := processWakes(1 << 30); err == nil {
		t.Fatal("a process that does not exist was counted")
	}
}

func TestProcFieldRefusesWhatIsNotThere(t *testing.T) {
	b := []byte("rchar: 10\nsyscr: 42\nsyscw: x\n")
	if v, err := procField(b, "syscr:"); err != nil || v != 42 {
		t.Fatalf("syscr: %d, %v", v, err)
	}
	if _, err := procField(b, "syscw:"); err == nil {
		t.Fatal("a field that is not a number was read")
	}
	if _, err := procField(b, "cancelled_write_bytes:"); err == nil {
		t.Fatal("a missing field was read as zero")
	}
}

func TestCompleteRatios(t *testing.T) {
	procs := func() map[string]*ProcessCost {
		return map[string]*ProcessCost{"enclave": {CPUSeconds: 0.2}, "parent": {CPUSeconds: 0.1}}
	}
	for _, tc := range []struct {
		name                     string
		r                        BenchReport
		cpu, toFloor, toMax, p99 float64
	}{
		{"against_the_floor_and_the_maximum", BenchReport{Requests: 1000, OK: 1000, Processes: procs(), FloorUS: 150, LoadedFloorUS: 200, Maximum: Maximum{MaxCPUPerReqUS: 250},
			LatencyMS: map[string]float64{"p50": 2, "p99": 9}}, 300, 2, 1.2, 4.5},
		{"no_maximum_no_ratio_to_it", BenchReport{Requests: 1000, OK: 1000, Processes: procs(), FloorUS: 150}, 300, 2, 0, 0},
		{"no_floor_no_ratio_to_it", BenchReport{Requests: 1000, OK: 1000, Processes: procs(), Maximum: Maximum{MaxCPUPerReqUS: 300}}, 300, 0, 1, 0},
		{"nothing_answered_no_cpu_per_request", BenchReport{Requests: 1000, Processes: procs(), FloorUS: 150, Maximum: Maximum{MaxCPUPerReqUS: 300}}, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.complete()
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if !near(r.CPUPerReqUS, tc.cpu) || !near(r.RatioToFloor, tc.toFloor) || !near(r.RatioToMax, tc.toMax) || !near(r.P99ToP50, tc.p99) {
				t.Fatalf("cpu %v, to floor %v, to max %v, p99/p50 %v; want %v, %v, %v, %v",
					r.CPUPerReqUS, r.RatioToFloor, r.RatioToMax, r.P99ToP50, tc.cpu, tc.toFloor, tc.toMax, tc.p99)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("the report does not encode: %v", err)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	// A real line's shape, with a command name holding a space and ") ".
	const tail = " S 1 2 3 0 -1 4194560 %s 0 5 0 %s %s 0 0 20 0 9 0 100 2000000 500 18446744073709551615"
	line := func(minflt, utime, stime string) []byte {
		return fmt.Appendf(nil, "4242 (par ent) x)"+tail, minflt, utime, stime)
	}
	for _, tc := range []struct {
		name string
		stat []byte
		cpu  float64
		flt  int64
		ok   bool
	}{
		{"cpu_is_utime_plus_stime_in_ticks", line("812", "150", "50"), 2, 812, true},
		{"zero_faults", line("0", "1", "0"), 0.01, 0, true},
		{"faults_not_a_number", line("many", "1", "0"), 0, 0, false},
		{"negative_faults", line("-3", "1", "0"), 0, 0, false},
		{"utime_not_a_number", line("1", "x", "0"), 0, 0, false},
		{"no_command_name", []byte("4242 S 1 2 3"), 0, 0, false},
		{"too_few_fields", []byte("4242 (parent) S 1 2 3 0 -1 4194560 812"), 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpu, flt, ok := parseStat(tc.stat)
			if ok != tc.ok || flt != tc.flt || math.Abs(cpu-tc.cpu) > 1e-9 {
				t.Fatalf("parseStat(%q) = %v, %d, %v; want %v, %d, %v", tc.stat, cpu, flt, ok, tc.cpu, tc.flt, tc.ok)
			}
		})
	}
	// And this process's own line: its faults are counted.
	if _, flt, err := processStat(os.Getpid()); err != nil || flt <= 0 {
		t.Fatalf("this process: %d faults, %v", flt, err)
	}
}

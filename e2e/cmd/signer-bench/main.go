// Command signer-bench is a load generator for the whole system: it calls
// a running parent as a caller does (mutual TLS, attestation, signed
// requests, every answer verified against the attested enclave) and
// reports throughput, latency, errors by code and the servers' CPU per
// request. It links enclave code (the keyring, the service's structs) only
// to time the crypto floor in-process, what one request cannot avoid; it
// is never deployed to a parent or an enclave.
//
//	signer-bench [--concurrency N] [--duration D] [--rate R | --rate-of-max F | --sweep [--sweep-steps F,F,...] [--svg FILE]]
//	             [--max-duration D] [--http1] [--sign-inline] [--mix METHOD[=WEIGHT],...]
//	             [--pid parent=PID --pid enclave=PID] [--out FILE] [client flags]
//	signer-bench help
//
// Closed loop (the default) loads as fast as answers come; --rate loads
// open loop at a fixed rate, latency counted from when each request was
// due; --rate-of-max first finds the maximum with a closed-loop run of
// --max-duration. --sweep finds the maximum, then loads for --duration at
// each fraction of it in --sweep-steps (default 10%, 20%, …, 100%), and
// writes the latency–throughput curve as JSON (stdout and --out) and as an
// SVG plot (--svg): p50 and p99 latency against the offered and the
// achieved rate, the servers' CPU per request on a second axis.
//
// help, -h or --help prints the usage with every flag and exits 0; a wrong
// command line prints one line to stderr and exits 2.
//
// Client flags, as signerctl's: --dev DIR fills in every path of a
// development layout (as make run creates it); otherwise --parent
// (repeatable: the replicas of a fleet), --cert, --key, --server-ca,
// --root, --pcrs or --pcr, --signer-id; and --allow-debug, --max-age,
// --timeout.
//
// Against a fleet the load spreads over the replicas: signed ahead, each
// request is signed for the replica it will be sent to, round robin; with
// --sign-inline each call goes to the replica with the fewest in flight
// and fails over as the client does. The report's replicas say what each
// replica did.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// benchOmni is the identity every benchmark request uses.
const benchOmni = "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"

// BenchReport is the JSON report of one load.
type BenchReport struct {
	Concurrency int                `json:"concurrency"`
	Protocol    string             `json:"protocol"`
	Rate        float64            `json:"target_rate"`
	Duration    float64            `json:"duration_s"`
	Mix         map[string]int     `json:"mix"`
	Requests    int64              `json:"requests"`
	OK          int64              `json:"ok"`
	Errors      map[string]int64   `json:"errors"`
	RPS         float64            `json:"requests_per_s"`
	LatencyMS   map[string]float64 `json:"latency_ms"`
	P99ToP50    float64            `json:"p99_to_p50,omitempty"`
	// SignedAhead is how many requests were signed before the window (0:
	// each was signed, and its answer verified, inside it). RanOut says the
	// window ended early because they were all sent.
	SignedAhead int  `json:"signed_ahead,omitempty"`
	RanOut      bool `json:"signed_ahead_ran_out,omitempty"`
	// Maximum is what --rate-of-max measured before the run, and
	// RatioToMax this load's CPU per request against the maximum's, both
	// measured in the same run.
	Maximum
	RatioToMax float64 `json:"server_cpu_to_max_ratio,omitempty"`
	// ServiceMS is latency from the moment a request was sent; at a fixed
	// rate LatencyMS counts from the moment it was due.
	ServiceMS map[string]float64 `json:"service_latency_ms,omitempty"`
	// ConnectionsOpened is how many connections the window's requests
	// dialled: 0 once the pool is warm, as a caller's long-lived pool is.
	// Before the warm-up, an HTTP/1.1 window opened a TLS connection for
	// each of its first --concurrency requests, and their handshakes were
	// its p99.
	ConnectionsOpened int64 `json:"connections_opened"`
	// Replicas are what each replica of the fleet did during the load
	// (the client's counters, client.Stats), Retries the calls' attempts
	// after their first and RetriesDenied the calls the retry budget
	// stopped.
	Replicas      []ReplicaReport         `json:"replicas,omitempty"`
	Retries       uint64                  `json:"retries,omitempty"`
	RetriesDenied uint64                  `json:"retries_denied,omitempty"`
	Processes     map[string]*ProcessCost `json:"processes,omitempty"`
	CPUPerReqUS   float64                 `json:"server_cpu_per_request_us,omitempty"`
	// Generator is what this load generator spent in the window (the
	// floor sampling included): on a machine it shares with the servers,
	// the cores it takes are not theirs to use. CoresBusy is the CPU
	// seconds per second of the servers and the generator together,
	// against Cores, when every --pid could be read: a step at half the
	// servers' maximum can keep the machine nearly busy.
	Generator *ProcessCost `json:"generator,omitempty"`
	CoresBusy float64      `json:"cores_busy,omitempty"`
	Cores     int          `json:"cores"`
	// The crypto floor measured on an idle machine before the load, and
	// again in short slices during it (see floorMeter), with the server's
	// CPU per request as a ratio to each.
	FloorUS            float64            `json:"crypto_floor_us"`
	FloorParts         map[string]float64 `json:"crypto_floor_parts_us"`
	RatioToFloor       float64            `json:"server_cpu_to_floor_ratio,omitempty"`
	LoadedFloorUS      float64            `json:"crypto_floor_under_load_us,omitempty"`
	LoadedFloorParts   map[string]float64 `json:"crypto_floor_under_load_parts_us,omitempty"`
	RatioToLoadedFloor float64            `json:"server_cpu_to_floor_under_load_ratio,omitempty"`
}

// Maximum is a closed-loop run's requests per second and, when every
// --pid was read, the servers' CPU per request in it.
type Maximum struct {
	MaxRPS         float64 `json:"max_requests_per_s,omitempty"`
	MaxCPUPerReqUS float64 `json:"max_server_cpu_per_request_us,omitempty"`
}

// ReplicaReport is one replica's share of a load.
type ReplicaReport struct {
	Endpoint     string `json:"endpoint"`
	Address      string `json:"address,omitempty"`
	Requests     uint64 `json:"requests"`
	Retries      uint64 `json:"retries,omitempty"`
	Failures     uint64 `json:"failures,omitempty"`
	Refused      uint64 `json:"refused,omitempty"`
	Attestations uint64 `json:"attestations,omitempty"`
}

// replicaDelta is what each replica did between two snapshots of a
// client's counters.
func replicaDelta(before, after client.Stats) []ReplicaReport {
	type key struct{ endpoint, address string }
	was := map[key]client.ReplicaStats{}
	for _, r := range before.Replicas {
		was[key{r.Endpoint, r.Address}] = r
	}
	var out []ReplicaReport
	for _, r := range after.Replicas {
		b := was[key{r.Endpoint, r.Address}]
		out = append(out, ReplicaReport{Endpoint: r.Endpoint, Address: r.Address, Requests: r.Requests - b.Requests,
			Retries: r.Retries - b.Retries, Failures: r.Failures - b.Failures, Refused: r.Refused - b.Refused,
			Attestations: r.Attestations - b.Attestations})
	}
	return out
}

// ProcessCost is what one server process spent during the run.
type ProcessCost struct {
	PID         int     `json:"pid"`
	CPUSeconds  float64 `json:"cpu_s"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	CPUPerReqUS float64 `json:"cpu_per_request_us"`
	// Per request, where /proc lets the bench read them: context
	// switches (voluntary and not, summed over the process's threads:
	// mostly wake-ups), and read and write system calls (syscr and syscw
	// of /proc/PID/io: every socket read and write, those that found
	// nothing to read included). Below saturation these are what a
	// request costs beyond its own work.
	// Absent, not zero, where /proc/PID/io cannot be read (it takes the
	// right to trace the process).
	ContextSwitchesPerReq *float64 `json:"context_switches_per_request,omitempty"`
	// Minor page faults per request (minflt of /proc/PID/stat): pages the
	// process touched that the kernel had to map first, such as heap the
	// runtime gave back and took again. Absent where CPU time is.
	PageFaultsPerReq *float64 `json:"minor_page_faults_per_request,omitempty"`
	ReadsPerReq      *float64 `json:"read_syscalls_per_request,omitempty"`
	WritesPerReq     *float64 `json:"write_syscalls_per_request,omitempty"`
}

// mixFlag parses "dev/sign-message=3,v1/derive-address=1".
type mixFlag map[string]int

func (m mixFlag) String() string { return fmt.Sprint(map[string]int(m)) }

func (m mixFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		name, weight, ok := strings.Cut(part, "=")
		w := 1
		if ok {
			var err error
			if w, err = strconv.Atoi(weight); err != nil || w < 1 {
				return fmt.Errorf("weight of %s: want a positive integer", name)
			}
		}
		if _, known := benchParams[name]; !known {
			return fmt.Errorf("bench cannot call %q (it can call %v)", name, slices.Sorted(mapKeys(benchParams)))
		}
		m[name] = w
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// pidFlags parses repeated --pid NAME=PID.
type pidFlags map[string]int

func (p pidFlags) String() string { return fmt.Sprint(map[string]int(p)) }

func (p pidFlags) Set(v string) error {
	name, pid, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(pid)
	if !ok || err != nil || n <= 0 {
		return fmt.Errorf("want NAME=PID")
	}
	p[name] = n
	return nil
}

var benchParams = map[string]any{
	"dev/sign-message":   api.DevSignMessageRequest{OmniAccount: benchOmni, MessageHex: "0x68656c6c6f2066726f6d207369676e657263746c"},
	"dev/derive-address": api.DevDeriveAddressRequest{OmniAccount: benchOmni},
	"v1/derive-address":  api.DeriveAddressRequest{OperatorOmni: benchOmni},
}

// defaultSweepSteps are the offered rates of a sweep, as fractions of the
// maximum.
var defaultSweepSteps = stepsFlag{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}

// maxSweepFraction bounds a sweep step: past the maximum the queue only
// grows, and a step at twice the maximum already shows it.
const maxSweepFraction = 2

// maxSweepSteps bounds the steps of a sweep.
const maxSweepSteps = 50

// stepsFlag parses --sweep-steps "0.1,0.2,0.5,1": fractions of the maximum,
// each in (0, maxSweepFraction], rising.
type stepsFlag []float64

func (s *stepsFlag) String() string {
	var parts []string
	for _, f := range *s {
		parts = append(parts, strconv.FormatFloat(f, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

func (s *stepsFlag) Set(v string) error {
	var steps stepsFlag
	for _, part := range strings.Split(v, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		switch {
		case err != nil:
			return fmt.Errorf("step %q: want a fraction of the maximum such as 0.5", part)
		case !(f > 0 && f <= maxSweepFraction):
			return fmt.Errorf("step %v: want a fraction in (0, %d]", f, maxSweepFraction)
		case len(steps) > 0 && f <= steps[len(steps)-1]:
			return fmt.Errorf("step %v: the steps must rise", f)
		case len(steps) == maxSweepSteps:
			return fmt.Errorf("more than %d steps", maxSweepSteps)
		}
		steps = append(steps, f)
	}
	*s = steps
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := cli.New("signer-bench", "", "load the running signer and report throughput, latency and the servers' CPU against the crypto floor;\n--sweep steps the offered rate up to saturation and writes the latency–throughput curve.")
	fs := cmd.Flags
	concurrency := fs.Int("concurrency", 16, "concurrent clients")
	duration := fs.Duration("duration", 20*time.Second, "how long to load (with --sweep: each step)")
	rate := fs.Float64("rate", 0, "fixed total request rate per second, open loop: latency counts from when each request was due (0: closed loop, as fast as answers come)")
	rateOfMax := fs.Float64("rate-of-max", 0, "fixed rate as a `FRACTION` of the maximum, which a closed-loop run of --max-duration measures first (0.7: 70%)")
	maxDuration := fs.Duration("max-duration", 10*time.Second, "how long --rate-of-max and --sweep load to find the maximum")
	sweep := fs.Bool("sweep", false, "find the maximum, then load open loop for --duration at each of --sweep-steps of it; report the curve")
	steps := append(stepsFlag(nil), defaultSweepSteps...)
	fs.Var(&steps, "sweep-steps", "with --sweep: the offered rates as rising fractions of the maximum, `F,F,...`")
	svgOut := fs.String("svg", "", "with --sweep: also write the curve as an SVG plot to `FILE`")
	http1 := fs.Bool("http1", false, "HTTP/1.1 (default HTTP/2)")
	signInline := fs.Bool("sign-inline", false, "sign each request and verify each answer inside the timed window, as a lone caller does (default: sign before the window, verify every answer after it)")
	out := fs.String("out", "", "also write the JSON report to `FILE`")
	mix := mixFlag{}
	fs.Var(mix, "mix", "method mix, `METHOD[=WEIGHT],...` (default dev/sign-message)")
	hostStalls := fs.Duration("host-stalls", 0, "put no load: spin a thread on each CPU for `DURATION` and report the gaps the machine took from them (run it idle: a gap there is the hypervisor's, and a floor under any tail)")
	pids := pidFlags{}
	fs.Var(pids, "pid", "a server process to account, `NAME=PID` (repeat for parent and enclave)")
	var cf cli.ClientFlags
	cf.Register(fs)
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	if *hostStalls > 0 {
		return runHostStalls(*hostStalls, *out, stdout, stderr)
	}
	if len(mix) == 0 {
		mix["dev/sign-message"] = 1
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *concurrency < 1 || *duration <= 0 || *rate < 0:
		return cmd.UsageError(stderr, "--concurrency and --duration must be positive, --rate not negative")
	case *rateOfMax < 0 || *rateOfMax > 1 || (*rateOfMax > 0 && (*rate > 0 || *maxDuration <= 0)):
		return cmd.UsageError(stderr, "--rate-of-max is a fraction in (0, 1], with a positive --max-duration and without --rate")
	case *sweep && (*rate > 0 || *rateOfMax > 0 || *maxDuration <= 0):
		return cmd.UsageError(stderr, "--sweep sets the rates itself: not with --rate or --rate-of-max, and with a positive --max-duration")
	case !*sweep && (set["svg"] || set["sweep-steps"]):
		return cmd.UsageError(stderr, "--sweep-steps and --svg go with --sweep")
	}
	// A server that did not start (its port taken, say) must not leave the
	// bench measuring whatever answers in its place.
	for _, name := range slices.Sorted(maps.Keys(pids)) {
		if _, err := processCPU(pids[name]); err != nil {
			return cmd.UsageError(stderr, "--pid %s=%d: no such process to account: %v", name, pids[name], err)
		}
	}
	proto := "HTTP/2"
	cf.Transport = func(cfg *tls.Config) http.RoundTripper {
		t := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: !*http1, MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency, IdleConnTimeout: time.Minute}
		if *http1 {
			t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		return t
	}
	if *http1 {
		proto = "HTTP/1.1"
	}
	c, err := cf.Client()
	if err != nil {
		return cmd.UsageError(stderr, "%v", err)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "signer-bench: "+format+"\n", a...)
		return cli.ExitFail
	}
	ctx := context.Background()
	if _, err := c.Attest(ctx); err != nil {
		return fail("attest: %v", err)
	}
	fmt.Fprintln(stderr, "signer-bench: measuring the crypto floor…")
	idle, err := newFloorMeter()
	if err == nil {
		err = idle.sample(500 * time.Millisecond)
	}
	if err != nil {
		return fail("crypto floor: %v", err)
	}
	idleFloor, idleParts, _ := idle.floor()
	ahead := !*signInline
	if ahead && (*duration > maxSignAhead || *maxDuration > maxSignAhead) {
		fmt.Fprintf(stderr, "signer-bench: windows over %s sign inline: requests signed ahead would outlive the enclave's freshness window\n", maxSignAhead)
		ahead = false
	}
	// load runs o, first signing its requests unless they are signed inline.
	load := func(o loadOptions) (*BenchReport, error) {
		if ahead {
			pool, err := signAhead(ctx, c, mix, signAheadCount(o.duration, o.rate, idleFloor), stderr)
			if err != nil {
				return nil, err
			}
			o.pool = pool
		}
		if err := warm(ctx, c, o.concurrency, mix); err != nil {
			return nil, err
		}
		before := c.Stats()
		r := runLoad(ctx, c, o, stderr)
		after := c.Stats()
		r.Replicas = replicaDelta(before, after)
		r.Retries, r.RetriesDenied = after.Retries-before.Retries, after.RetriesDenied-before.RetriesDenied
		return r, nil
	}
	// measured loads at rate for --duration, accounting the servers' CPU
	// and the crypto floor under load, and completes the report.
	var maximum Maximum
	measured := func(rate float64) (*BenchReport, error) {
		loaded, err := newFloorMeter()
		if err != nil {
			return nil, fmt.Errorf("crypto floor: %w", err)
		}
		report, err := load(loadOptions{concurrency: *concurrency, duration: *duration, rate: rate, mix: mix, pids: pids, floor: loaded})
		if err != nil {
			return nil, err
		}
		report.Protocol, report.Mix, report.Rate, report.Maximum = proto, mix, rate, maximum
		if len(report.Processes) != len(pids) {
			report.MaxCPUPerReqUS = 0 // not the same processes: no ratio
		}
		report.FloorUS, report.FloorParts = idleFloor, idleParts
		report.LoadedFloorUS, report.LoadedFloorParts, _ = loaded.floor()
		report.complete()
		return report, nil
	}
	if *rateOfMax > 0 || *sweep {
		fmt.Fprintf(stderr, "signer-bench: finding the maximum (closed loop, %s)…\n", *maxDuration)
		m, err := load(loadOptions{concurrency: *concurrency, duration: *maxDuration, mix: mix, pids: pids})
		if err != nil {
			return fail("%v", err)
		}
		if m.OK == 0 {
			return fail("no request succeeded while finding the maximum: %v", m.Errors)
		}
		m.complete()
		maximum.MaxRPS = m.RPS
		if len(m.Processes) == len(pids) {
			maximum.MaxCPUPerReqUS = m.CPUPerReqUS // every server, or none
		}
		if maximum.MaxCPUPerReqUS > 0 {
			fmt.Fprintf(stderr, "signer-bench: maximum %.0f req/s, the servers %.0f µs of CPU a request\n", maximum.MaxRPS, maximum.MaxCPUPerReqUS)
		} else {
			fmt.Fprintf(stderr, "signer-bench: maximum %.0f req/s\n", maximum.MaxRPS)
		}
	}
	var result any
	if *sweep {
		s := &SweepReport{Protocol: proto, Concurrency: *concurrency, Mix: mix, StepDuration: duration.Seconds(),
			Maximum: maximum, MaxDuration: maxDuration.Seconds(), FloorUS: idleFloor, FloorParts: idleParts}
		for i, f := range steps {
			rate := f * maximum.MaxRPS
			fmt.Fprintf(stderr, "signer-bench: step %d of %d: %.0f req/s, %.0f%% of the maximum\n", i+1, len(steps), rate, 100*f)
			r, err := measured(rate)
			if err != nil {
				return fail("%v", err)
			}
			s.Steps = append(s.Steps, SweepStep{Fraction: f, BenchReport: r})
		}
		if *svgOut != "" {
			svg, err := plotSweep(s)
			if err == nil {
				err = os.WriteFile(*svgOut, svg, 0o644)
			}
			if err != nil {
				return fail("plot: %v", err)
			}
		}
		result = s
	} else {
		if *rateOfMax > 0 {
			*rate = *rateOfMax * maximum.MaxRPS
			fmt.Fprintf(stderr, "signer-bench: loading at %.0f req/s\n", *rate)
		}
		r, err := measured(*rate)
		if err != nil {
			return fail("%v", err)
		}
		result = r
	}
	b, _ := json.MarshalIndent(result, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return fail("%v", err)
		}
	}
	return cli.ExitOK
}

// complete derives the ratios from what a load measured and the floors.
func (r *BenchReport) complete() {
	if p50 := r.LatencyMS["p50"]; p50 > 0 {
		r.P99ToP50 = r.LatencyMS["p99"] / p50
	}
	if r.Processes != nil && r.OK > 0 {
		var total float64
		for _, p := range r.Processes {
			total += p.CPUSeconds
		}
		r.CPUPerReqUS = total / float64(r.Requests) * 1e6
		if r.FloorUS > 0 {
			r.RatioToFloor = r.CPUPerReqUS / r.FloorUS
		}
		if r.MaxCPUPerReqUS > 0 {
			r.RatioToMax = r.CPUPerReqUS / r.MaxCPUPerReqUS
		}
		if r.LoadedFloorUS > 0 {
			r.RatioToLoadedFloor = r.CPUPerReqUS / r.LoadedFloorUS
		}
	}
}

// SweepReport is the JSON report of --sweep: the maximum, then one load
// at each step's fraction of it.
type SweepReport struct {
	Protocol     string         `json:"protocol"`
	Concurrency  int            `json:"concurrency"`
	Mix          map[string]int `json:"mix"`
	StepDuration float64        `json:"step_duration_s"`
	// Maximum is the closed loop measured for MaxDuration first.
	Maximum
	MaxDuration float64            `json:"max_duration_s"`
	FloorUS     float64            `json:"crypto_floor_us"`
	FloorParts  map[string]float64 `json:"crypto_floor_parts_us"`
	Steps       []SweepStep        `json:"steps"`
}

// SweepStep is one load of a sweep: its target_rate is the offered rate,
// its requests_per_s the achieved one.
type SweepStep struct {
	Fraction float64 `json:"fraction_of_max"`
	*BenchReport
}

// runHostStalls is --host-stalls: no load, only the machine's own gaps.
func runHostStalls(d time.Duration, out string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "signer-bench: spinning a thread on each CPU for %s…\n", d)
	r, err := measureStalls(d)
	if err != nil {
		fmt.Fprintf(stderr, "signer-bench: %v\n", err)
		return cli.ExitFail
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	stdout.Write(append(b, '\n'))
	if out != "" {
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "signer-bench: %v\n", err)
			return cli.ExitFail
		}
	}
	return 0
}

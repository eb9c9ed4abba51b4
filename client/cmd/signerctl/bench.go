package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// benchOmni is the identity every benchmark request uses.
const benchOmni = "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"

// BenchReport is the JSON report of signerctl bench.
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
	// MaxRPS is the maximum --rate-of-max measured before the run.
	MaxRPS float64 `json:"max_requests_per_s,omitempty"`
	// ServiceMS is latency from the moment a request was sent; at a fixed
	// rate LatencyMS counts from the moment it was due.
	ServiceMS   map[string]float64      `json:"service_latency_ms,omitempty"`
	Processes   map[string]*ProcessCost `json:"processes,omitempty"`
	CPUPerReqUS float64                 `json:"server_cpu_per_request_us,omitempty"`
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

// ProcessCost is what one server process spent during the run.
type ProcessCost struct {
	PID         int     `json:"pid"`
	CPUSeconds  float64 `json:"cpu_s"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	CPUPerReqUS float64 `json:"cpu_per_request_us"`
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

// bench: signerctl bench [--concurrency N] [--duration D] [--rate R | --rate-of-max F] [--http1] [--sign-inline]
// [--mix M] [--pid parent=PID --pid enclave=PID] [--out FILE] [client flags]
func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	concurrency := fs.Int("concurrency", 16, "concurrent clients")
	duration := fs.Duration("duration", 20*time.Second, "how long to load")
	rate := fs.Float64("rate", 0, "fixed total request rate per second, open loop: latency counts from when each request was due (0: closed loop, as fast as answers come)")
	rateOfMax := fs.Float64("rate-of-max", 0, "fixed rate as a fraction of the maximum, which a closed-loop run of --max-duration measures first (0.7: 70%)")
	maxDuration := fs.Duration("max-duration", 10*time.Second, "how long --rate-of-max loads to find the maximum")
	http1 := fs.Bool("http1", false, "HTTP/1.1 (default HTTP/2)")
	signInline := fs.Bool("sign-inline", false, "sign each request and verify each answer inside the timed window, as a lone caller does (default: sign before the window, verify every answer after it)")
	out := fs.String("out", "", "also write the JSON report here")
	mix := mixFlag{}
	fs.Var(mix, "mix", "method mix, METHOD[=WEIGHT],… (default dev/sign-message)")
	pids := pidFlags{}
	fs.Var(pids, "pid", "a server process to account: NAME=PID (repeat for parent and enclave)")
	var cf clientFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(mix) == 0 {
		mix["dev/sign-message"] = 1
	}
	if *concurrency < 1 || *duration <= 0 || *rate < 0 {
		fmt.Fprintln(stderr, "bench: --concurrency and --duration must be positive, --rate not negative")
		return 2
	}
	if *rateOfMax < 0 || *rateOfMax > 1 || (*rateOfMax > 0 && (*rate > 0 || *maxDuration <= 0)) {
		fmt.Fprintln(stderr, "bench: --rate-of-max is a fraction in (0, 1], with a positive --max-duration and without --rate")
		return 2
	}
	proto := "HTTP/2"
	cf.transport = func(cfg *tls.Config) http.RoundTripper {
		t := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: !*http1, MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency, IdleConnTimeout: time.Minute}
		if *http1 {
			t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		return t
	}
	if *http1 {
		proto = "HTTP/1.1"
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	ctx := context.Background()
	if _, err := c.Attest(ctx); err != nil {
		fmt.Fprintf(stderr, "bench: attest: %v\n", err)
		return 1
	}
	fmt.Fprintln(stderr, "bench: measuring the crypto floor…")
	idle, err := newFloorMeter()
	if err == nil {
		err = idle.sample(500 * time.Millisecond)
	}
	loaded, lerr := newFloorMeter()
	if err == nil {
		err = lerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: crypto floor: %v\n", err)
		return 1
	}
	idleFloor, idleParts, _ := idle.floor()
	ahead := !*signInline
	if ahead && (*duration > maxSignAhead || *maxDuration > maxSignAhead) {
		fmt.Fprintf(stderr, "bench: windows over %s sign inline: requests signed ahead would outlive the enclave's freshness window\n", maxSignAhead)
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
		return runLoad(ctx, c, o, stderr), nil
	}
	var maxRPS float64
	if *rateOfMax > 0 {
		fmt.Fprintf(stderr, "bench: finding the maximum (closed loop, %s)…\n", *maxDuration)
		m, err := load(loadOptions{concurrency: *concurrency, duration: *maxDuration, mix: mix})
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		if m.OK == 0 {
			fmt.Fprintf(stderr, "bench: no request succeeded while finding the maximum: %v\n", m.Errors)
			return 1
		}
		maxRPS = m.RPS
		*rate = *rateOfMax * maxRPS
		fmt.Fprintf(stderr, "bench: maximum %.0f req/s; loading at %.0f req/s\n", maxRPS, *rate)
	}
	report, err := load(loadOptions{concurrency: *concurrency, duration: *duration, rate: *rate, mix: mix, pids: pids, floor: loaded})
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	report.Protocol, report.Mix, report.Rate, report.MaxRPS = proto, mix, *rate, maxRPS
	if p50 := report.LatencyMS["p50"]; p50 > 0 {
		report.P99ToP50 = report.LatencyMS["p99"] / p50
	}
	report.FloorUS, report.FloorParts = idleFloor, idleParts
	report.LoadedFloorUS, report.LoadedFloorParts, _ = loaded.floor()
	if report.Processes != nil && report.OK > 0 {
		var total float64
		for _, p := range report.Processes {
			total += p.CPUSeconds
		}
		report.CPUPerReqUS = total / float64(report.Requests) * 1e6
		report.RatioToFloor = report.CPUPerReqUS / report.FloorUS
		if report.LoadedFloorUS > 0 {
			report.RatioToLoadedFloor = report.CPUPerReqUS / report.LoadedFloorUS
		}
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	return 0
}

type loadOptions struct {
	concurrency int
	duration    time.Duration
	rate        float64
	mix         map[string]int
	pids        map[string]int
	// floor, if set, is sampled for floorSlice per part each second while
	// the load runs.
	floor *floorMeter
	// pool, if set, holds requests signed before the window: they are sent
	// in order, and every answer is verified after the window. The window
	// ends early if they run out.
	pool []*client.Request
}

// maxSignAhead is the longest window whose requests are signed before it:
// a request must reach the enclave within its freshness window of the
// moment it was signed (60 s by default).
const maxSignAhead = 40 * time.Second

// signAheadCount is how many requests to sign before a window of d: at a
// fixed rate, one per due time; closed loop, as many as this machine's
// cores could serve if the servers spent only the crypto floor (floorUS)
// on each, which bounds what they can do when they run here. Never more
// than maxSignedAhead (about 2 KiB each with its answer).
func signAheadCount(d time.Duration, rate, floorUS float64) int {
	n := maxSignedAhead
	switch {
	case rate > 0:
		n = int(math.Ceil(rate*d.Seconds())) + 1
	case floorUS > 0:
		n = int(math.Ceil(d.Seconds() * float64(runtime.NumCPU()) * 1e6 / floorUS))
	}
	return min(n, maxSignedAhead)
}

// maxSignedAhead bounds the requests signed ahead, and so the memory they
// and their answers hold.
const maxSignedAhead = 400_000

// signAhead signs n requests, the methods in the mix's proportions, on
// every core.
func signAhead(ctx context.Context, c *client.Client, mix map[string]int, n int, stderr io.Writer) ([]*client.Request, error) {
	methods := mixMethods(mix)
	fmt.Fprintf(stderr, "bench: signing %d requests ahead…\n", n)
	pool := make([]*client.Request, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	strided(workers, n, func(w, i int) {
		if errs[w] != nil {
			return
		}
		m := methods[i%len(methods)]
		r, err := c.Prepare(ctx, m, benchParams[m])
		if err != nil {
			errs[w] = fmt.Errorf("signing ahead: %w", err)
			return
		}
		pool[i] = r
	})
	return pool, errors.Join(errs...)
}

// strided calls f(w, i) for every i below n on workers goroutines, worker w
// taking i = w, w+workers, …, and returns when all are done.
func strided(workers, n int, f func(w, i int)) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				f(w, i)
			}
		})
	}
	wg.Wait()
}

// opener verifies an answer; *client.Client is one.
type opener interface {
	Open(ctx context.Context, req *client.Request, a *client.Answer, result any) error
}

// verifyAnswers verifies, on every core, each answer to the request of the
// same index (a nil answer was never received) and counts the verified
// ones and the failures by code.
func verifyAnswers(ctx context.Context, c opener, reqs []*client.Request, answers []*client.Answer) (ok int64, errs map[string]int64) {
	workers := runtime.GOMAXPROCS(0)
	oks := make([]int64, workers)
	perWorker := make([]map[string]int64, workers)
	for w := range workers {
		perWorker[w] = map[string]int64{}
	}
	strided(workers, len(answers), func(w, i int) {
		if answers[i] == nil {
			return
		}
		var result json.RawMessage
		if err := c.Open(ctx, reqs[i], answers[i], &result); err != nil {
			perWorker[w][errorCode(err)]++
			return
		}
		oks[w]++
	})
	errs = map[string]int64{}
	for w := range workers {
		ok += oks[w]
		for code, n := range perWorker[w] {
			errs[code] += n
		}
	}
	return ok, errs
}

func mixMethods(mix map[string]int) []string {
	var methods []string
	for m, w := range mix {
		for range w {
			methods = append(methods, m)
		}
	}
	sort.Strings(methods)
	return methods
}

// floorSlice is how long each floor part runs per second of load: four
// parts take about 6% of one core from the load generator.
const floorSlice = 15 * time.Millisecond

func runLoad(ctx context.Context, c *client.Client, o loadOptions, stderr io.Writer) *BenchReport {
	methods := mixMethods(o.mix)
	before := map[string]float64{}
	for name, pid := range o.pids {
		before[name], _ = processCPU(pid)
	}
	var (
		done, ok atomic.Int64
		mu       sync.Mutex
		errs     = map[string]int64{}
		lats     = make([][]time.Duration, o.concurrency)
		svc      = make([][]time.Duration, o.concurrency)
		peakRSS  = map[string]float64{}
	)
	deadline := time.Now().Add(o.duration)
	// At a fixed rate, request n is due at start + n/rate; the workers take
	// the due times in turn. A ticker would drop ticks whenever its reader
	// is late, and the rate would fall short of the one asked for. Latency
	// counts from the due time, so time spent waiting for a free worker
	// (when the server falls behind) is counted, not omitted.
	var slot atomic.Int64
	var ranOut atomic.Bool
	var answers []*client.Answer
	if o.pool != nil {
		answers = make([]*client.Answer, len(o.pool))
	}
	interval := time.Duration(0)
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) / o.rate)
	}
	stop := make(chan struct{})
	// background is the progress line and the floor sampling; both end at
	// stop, and the report waits for them (the progress line reads errs and
	// writes peakRSS).
	var background sync.WaitGroup
	background.Go(func() { // progress line and RSS sampling
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start, last := time.Now(), int64(0)
		for {
			select {
			case <-stop:
				fmt.Fprintln(stderr)
				return
			case <-t.C:
				n := done.Load()
				mu.Lock()
				for name, pid := range o.pids {
					if rss, err := processRSS(pid, "VmRSS"); err == nil && rss > peakRSS[name] {
						peakRSS[name] = rss
					}
				}
				nerr := int64(0)
				for _, e := range errs {
					nerr += e
				}
				mu.Unlock()
				fmt.Fprintf(stderr, "\rbench: %4.0fs  %7d requests  %7.0f req/s  %d errors   ", time.Since(start).Seconds(), n, float64(n-last), nerr)
				last = n
			}
		}
	})
	if o.floor != nil {
		background.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if err := o.floor.sample(floorSlice); err != nil {
						fmt.Fprintf(stderr, "\nbench: crypto floor under load: %v\n", err)
						return
					}
				}
			}
		})
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				t0, k := time.Now(), int64(-1)
				if interval > 0 || o.pool != nil {
					k = slot.Add(1) - 1
				}
				if interval > 0 {
					t0 = start.Add(time.Duration(k) * interval)
					if !t0.Before(deadline) {
						return
					}
				}
				if o.pool != nil && k >= int64(len(o.pool)) {
					ranOut.Store(true)
					return
				}
				time.Sleep(time.Until(t0))
				sent := time.Now()
				var err error
				if o.pool != nil {
					answers[k], err = c.Send(ctx, o.pool[k])
				} else {
					method := methods[i%len(methods)]
					var result json.RawMessage
					err = c.Call(ctx, method, benchParams[method], &result)
				}
				lats[w] = append(lats[w], time.Since(t0))
				if interval > 0 {
					svc[w] = append(svc[w], time.Since(sent))
				}
				done.Add(1)
				if err == nil {
					if o.pool == nil {
						ok.Add(1)
					}
					continue
				}
				mu.Lock()
				errs[errorCode(err)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	background.Wait()
	if o.pool != nil {
		fmt.Fprintf(stderr, "bench: verifying %d answers…\n", done.Load())
		n, verrs := verifyAnswers(ctx, c, o.pool, answers)
		ok.Add(n)
		for code, n := range verrs {
			errs[code] += n
		}
	}
	r := &BenchReport{Concurrency: o.concurrency, Duration: elapsed.Seconds(), Requests: done.Load(), OK: ok.Load(), Errors: errs,
		SignedAhead: len(o.pool), RanOut: ranOut.Load()}
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	r.LatencyMS = percentiles(lats)
	if interval > 0 {
		r.ServiceMS = percentiles(svc)
	}
	if len(o.pids) > 0 {
		r.Processes = map[string]*ProcessCost{}
		for name, pid := range o.pids {
			after, err := processCPU(pid)
			if err != nil {
				continue
			}
			hwm, _ := processRSS(pid, "VmHWM")
			p := &ProcessCost{PID: pid, CPUSeconds: after - before[name], PeakRSSMiB: max(hwm, peakRSS[name])}
			if r.Requests > 0 {
				p.CPUPerReqUS = p.CPUSeconds / float64(r.Requests) * 1e6
			}
			r.Processes[name] = p
		}
	}
	return r
}

// percentiles are p50, p90, p99 and max of the workers' latencies, in ms.
func percentiles(lats [][]time.Duration) map[string]float64 {
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	out := map[string]float64{}
	for name, q := range map[string]float64{"p50": .50, "p90": .90, "p99": .99, "max": 1} {
		if len(all) > 0 {
			out[name] = float64(all[min(len(all)-1, int(q*float64(len(all))))].Microseconds()) / 1000
		}
	}
	return out
}

func errorCode(err error) string {
	var e *api.Error
	var pe *client.ParentError
	switch {
	case errors.As(err, &e):
		return string(e.Code)
	case errors.As(err, &pe):
		return "parent:" + pe.Code
	case errors.Is(err, client.ErrResponse):
		return "bad_response"
	}
	return "transport"
}

// processCPU is a process's user+system CPU seconds from /proc/PID/stat.
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return (utime + stime) / clockTicks, nil
}

// processRSS reads a memory field (VmRSS, VmHWM) of /proc/PID/status in MiB.
func processRSS(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s", field)
}

// floorMeter measures, with the enclave's own code, the cryptography one
// sign-message request cannot avoid: verifying the caller's ES256 request
// signature, deriving the wallet key, the secp256k1 signature, and signing
// the response. It accumulates thread CPU time and operations per part, so
// it can be sampled once on an idle machine and again, in short slices,
// while the load runs: under load the same cryptography costs more CPU
// (the cores' caches and memory bandwidth are shared), and a floor
// measured idle would count that contention as the server's overhead.
type floorMeter struct {
	parts map[string]func() error
	cpu   map[string]time.Duration
	ops   map[string]int
}

func newFloorMeter() (*floorMeter, error) {
	callerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	req, err := envelope.SignRequest(envelope.Credentials{Signer: callerKey, Leaf: []byte("leaf")},
		envelope.Outgoing{Method: "dev/sign-message", Params: benchParams["dev/sign-message"], Audience: "bench", Enclave: strings.Repeat("k", 43), IAT: time.Now(), Nonce: make([]byte, 16)})
	if err != nil {
		return nil, err
	}
	keys := keyring.New()
	secret, _ := keyring.NewSecret(bytes.Repeat([]byte{0x42}, 32))
	keys.Add(secret)
	omni, _ := keyring.ParseOmni(benchOmni)
	respKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := envelope.NewResponseSigner(respKey)
	if err != nil {
		return nil, err
	}
	msg := []byte("hello from signerctl")
	result := api.DevSignMessageResponse{Signature: "0x" + strings.Repeat("ab", 65), Address: "0x" + strings.Repeat("cd", 20), KeyVersion: 1}
	m := &floorMeter{cpu: map[string]time.Duration{}, ops: map[string]int{}}
	m.parts = map[string]func() error{
		"verify_request_signature": func() error {
			jws, err := jose.ParseSignedCompact(string(req), []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				return err
			}
			_, err = jws.Verify(&callerKey.PublicKey)
			return err
		},
		"derive_wallet_key": func() error {
			_, err := keys.Derive(keyring.Wallet, 1, omni)
			return err
		},
		"secp256k1_sign": func() error {
			k, err := keys.Derive(keyring.Wallet, 1, omni)
			if err != nil {
				return err
			}
			_, err = k.Sign(service.PersonalHash(msg))
			return err
		},
		"sign_response": func() error {
			_, err := signer.Sign(req, time.Now(), result, nil)
			return err
		},
	}
	return m, nil
}

// sample runs every part for about d of wall time each, on one locked
// thread, and adds the thread's CPU time and the operations to the totals.
// CPU time, not wall time: time spent preempted would inflate the floor and
// flatter the ratio (the server side is CPU time too, from /proc).
func (m *floorMeter) sample(d time.Duration) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, name := range slices.Sorted(mapKeys(m.parts)) {
		f := m.parts[name]
		cpu0, err := threadCPU()
		if err != nil {
			return err
		}
		n, start := 0, time.Now()
		for n == 0 || time.Since(start) < d {
			if err := f(); err != nil {
				return err
			}
			n++
		}
		cpu1, err := threadCPU()
		if err != nil {
			return err
		}
		m.cpu[name] += cpu1 - cpu0
		m.ops[name] += n
	}
	return nil
}

// floor is the microseconds per request, in total and per part, of what
// has been sampled; ok is false before any sample.
func (m *floorMeter) floor() (total float64, parts map[string]float64, ok bool) {
	parts = map[string]float64{}
	for name := range m.parts {
		if m.ops[name] == 0 {
			return 0, nil, false
		}
		parts[name] = float64(m.cpu[name].Nanoseconds()) / 1e3 / float64(m.ops[name])
	}
	// secp256k1_sign includes a derivation; count it once.
	parts["secp256k1_sign"] -= parts["derive_wallet_key"]
	for _, us := range parts {
		total += us
	}
	return total, parts, true
}

// threadCPU is the calling thread's user and system CPU time.
func threadCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// rusageThread is RUSAGE_THREAD (Linux).
const rusageThread = 1

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http/httptrace"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
)

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
	fmt.Fprintf(stderr, "signer-bench: signing %d requests ahead…\n", n)
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

// warm makes n calls at once, in the mix's proportions, so that the pool
// holds as many connections as the window will use before it starts: a
// window measures a caller whose connections are open, as a broker's or a
// worker's are, not n TLS handshakes. Over HTTP/2 the calls share the
// connections already open (a second one once a connection's streams are
// all taken); over HTTP/1.1 each holds its own: each call, once it has its
// connection, waits for the others to have theirs (at most warmHold), so
// that one finished early does not hand its connection to another.
func warm(ctx context.Context, c *client.Client, n int, mix map[string]int) error {
	methods := mixMethods(mix)
	errs := make([]error, n)
	var (
		got  atomic.Int64
		once sync.Once
		all  = make(chan struct{})
	)
	hold := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		if got.Add(1) >= int64(n) {
			once.Do(func() { close(all) })
		}
		t := time.NewTimer(warmHold)
		defer t.Stop()
		select {
		case <-all:
		case <-t.C:
		}
	}})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := methods[i%len(methods)]
			var result json.RawMessage
			if err := c.Call(hold, m, benchParams[m], &result); err != nil {
				errs[i] = fmt.Errorf("warming the connections: %w", err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// warmHold is the longest a warm-up call holds its connection waiting for
// the others to have theirs.
const warmHold = 2 * time.Second

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

// Under load the floor is sampled one part at a time, for floorSlice every
// floorEvery: about 6% of one core, as when the four parts ran 15 ms each
// once a second, but holding a core for about a millisecond at a time. A
// 60 ms hold once a second took one of two cores from the servers long
// enough to queue every request due in it: at half the maximum the slow
// requests clustered in the first 50 ms of each second, and p99/p50 at
// 2,880 req/s fell from 8.3 to 6.1-6.4 once the holds were short.
const (
	floorSlice = time.Millisecond
	floorEvery = 17 * time.Millisecond
)

func runLoad(ctx context.Context, c *client.Client, o loadOptions, stderr io.Writer) *BenchReport {
	methods := mixMethods(o.mix)
	before := map[string]processSample{}
	for name, pid := range o.pids {
		before[name] = sampleProcess(pid)
		if err := before[name].wakesErr; err != nil {
			fmt.Fprintf(stderr, "signer-bench: %s (pid %d): no context switch or system call counts: %v\n", name, pid, err)
		}
	}
	self := sampleProcess(os.Getpid())
	var opened atomic.Int64
	window := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			opened.Add(1)
		}
	}})
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
				fmt.Fprintf(stderr, "\rsigner-bench: %4.0fs  %7d requests  %7.0f req/s  %d errors   ", time.Since(start).Seconds(), n, float64(n-last), nerr)
				last = n
			}
		}
	})
	if o.floor != nil {
		background.Go(func() {
			t := time.NewTicker(floorEvery)
			defer t.Stop()
			names := o.floor.names()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-t.C:
					if err := o.floor.samplePart(names[i%len(names)], floorSlice); err != nil {
						fmt.Fprintf(stderr, "\nsigner-bench: crypto floor under load: %v\n", err)
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
					answers[k], err = c.Send(window, o.pool[k])
				} else {
					method := methods[i%len(methods)]
					var result json.RawMessage
					err = c.Call(window, method, benchParams[method], &result)
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
	// Every process's cost ends with the window, before the answers are
	// verified.
	requests := done.Load()
	generator := self.cost(os.Getpid(), requests, 0)
	servers := map[string]*ProcessCost{}
	for name, pid := range o.pids {
		if p := before[name].cost(pid, requests, peakRSS[name]); p != nil {
			servers[name] = p
		}
	}
	if o.pool != nil {
		fmt.Fprintf(stderr, "signer-bench: verifying %d answers…\n", done.Load())
		n, verrs := verifyAnswers(ctx, c, o.pool, answers)
		ok.Add(n)
		for code, n := range verrs {
			errs[code] += n
		}
	}
	r := &BenchReport{Concurrency: o.concurrency, Cores: runtime.NumCPU(), Duration: elapsed.Seconds(), Requests: done.Load(), OK: ok.Load(), Errors: errs,
		SignedAhead: len(o.pool), RanOut: ranOut.Load(), ConnectionsOpened: opened.Load()}
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	r.LatencyMS = percentiles(lats)
	if interval > 0 {
		r.ServiceMS = percentiles(svc)
	}
	if len(o.pids) > 0 {
		r.Processes = servers
	}
	r.Generator = generator
	// The cores busy are the servers' and the generator's together: only
	// when every server named was measured.
	switch {
	case generator == nil || len(o.pids) == 0:
	case len(servers) < len(o.pids):
		fmt.Fprintf(stderr, "signer-bench: %d of %d server processes could not be read: no cores_busy\n", len(o.pids)-len(servers), len(o.pids))
	default:
		busy := generator.CPUSeconds
		for _, p := range servers {
			busy += p.CPUSeconds
		}
		r.CoresBusy = busy / elapsed.Seconds()
	}
	return r
}

// processSample is a process's CPU seconds and wake-up counts at one time.
type processSample struct {
	cpu      float64
	faults   int64
	cpuOK    bool
	wakes    wakeCounts
	wakesErr error
}

func sampleProcess(pid int) processSample {
	cpu, faults, err := processStat(pid)
	wakes, werr := processWakes(pid)
	return processSample{cpu: cpu, faults: faults, cpuOK: err == nil, wakes: wakes, wakesErr: werr}
}

// cost is what the process pid spent since s, per request of requests;
// nil if its CPU time cannot be read (then or now).
func (s processSample) cost(pid int, requests int64, peakRSS float64) *ProcessCost {
	now := sampleProcess(pid)
	if !s.cpuOK || !now.cpuOK {
		return nil
	}
	hwm, _ := processRSS(pid, "VmHWM")
	p := &ProcessCost{PID: pid, CPUSeconds: now.cpu - s.cpu, PeakRSSMiB: max(hwm, peakRSS)}
	if requests > 0 {
		p.CPUPerReqUS = p.CPUSeconds / float64(requests) * 1e6
		faults := float64(max(0, now.faults-s.faults)) / float64(requests)
		p.PageFaultsPerReq = &faults
		if s.wakesErr == nil && now.wakesErr == nil {
			// A thread that exited took its switches with it: never
			// below zero.
			per := func(a, b int64) *float64 { v := float64(max(0, b-a)) / float64(requests); return &v }
			p.ContextSwitchesPerReq = per(s.wakes.switches, now.wakes.switches)
			p.ReadsPerReq = per(s.wakes.reads, now.wakes.reads)
			p.WritesPerReq = per(s.wakes.writes, now.wakes.writes)
		}
	}
	return p
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
	cpu, _, err := processStat(pid)
	return cpu, err
}

// processStat is a process's user+system CPU seconds and its minor page
// faults (over all its threads) from /proc/PID/stat.
func processStat(pid int) (cpu float64, minorFaults int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	cpu, minorFaults, ok := parseStat(b)
	if !ok {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return cpu, minorFaults, nil
}

// parseStat reads a /proc/PID/stat line. The fields after the command name,
// which is in parentheses and may hold spaces and parentheses: state is
// field 3, minflt field 10, utime and stime fields 14 and 15.
func parseStat(b []byte) (cpu float64, minorFaults int64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, 0, false
	}
	minflt, err0 := strconv.ParseInt(fields[7], 10, 64)
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err0 != nil || err1 != nil || err2 != nil || minflt < 0 || utime < 0 || stime < 0 {
		return 0, 0, false
	}
	const clockTicks = 100 // USER_HZ on Linux
	return (utime + stime) / clockTicks, minflt, true
}

// wakeCounts are a process's context switches, summed over its threads,
// and its read and write system calls, since it started.
type wakeCounts struct{ switches, reads, writes int64 }

// processWakes reads them from /proc/PID/task/*/status and /proc/PID/io.
// A thread that exits takes its switches with it; Go's threads rarely do.
func processWakes(pid int) (wakeCounts, error) {
	var n wakeCounts
	ioStats, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return n, err
	}
	if n.reads, err = procField(ioStats, "syscr:"); err != nil {
		return n, err
	}
	if n.writes, err = procField(ioStats, "syscw:"); err != nil {
		return n, err
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return n, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread exited since the listing
		}
		for _, f := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
			v, err := procField(b, f)
			if err != nil {
				return n, err
			}
			n.switches += v
		}
	}
	return n, nil
}

// procField is the integer after name at the start of a line of b.
func procField(b []byte, name string) (int64, error) {
	rest, err := procLine(b, name)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(rest, 10, 64)
}

// procLine is what follows name at the start of a line of b (a /proc
// file's "name: value" lines), trimmed.
func procLine(b []byte, name string) (string, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("no %s", strings.TrimSuffix(name, ":"))
}

// processRSS reads a memory field (VmRSS, VmHWM) of /proc/PID/status in MiB.
func processRSS(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	rest, err := procLine(b, field+":")
	if err != nil {
		return 0, err
	}
	kb, err := strconv.ParseFloat(strings.TrimSuffix(rest, " kB"), 64)
	return kb / 1024, err
}

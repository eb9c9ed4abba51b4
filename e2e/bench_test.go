package e2e

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchReport is the part of signer-bench's report this test reads.
type benchReport struct {
	Requests    int64                   `json:"requests"`
	Duration    float64                 `json:"duration_s"`
	OK          int64                   `json:"ok"`
	Errors      map[string]int64        `json:"errors"`
	RPS         float64                 `json:"requests_per_s"`
	Latency     map[string]float64      `json:"latency_ms"`
	Service     map[string]float64      `json:"service_latency_ms"`
	Processes   map[string]benchProcess `json:"processes"`
	Generator   *benchProcess           `json:"generator"`
	CoresBusy   float64                 `json:"cores_busy"`
	Cores       int                     `json:"cores"`
	CPUPerReqUS float64                 `json:"server_cpu_per_request_us"`
	Floor       float64                 `json:"crypto_floor_us"`
	FloorParts  map[string]float64      `json:"crypto_floor_parts_us"`
	Ratio       float64                 `json:"server_cpu_to_floor_ratio"`
	LoadedFloor float64                 `json:"crypto_floor_under_load_us"`
	LoadedRatio float64                 `json:"server_cpu_to_floor_under_load_ratio"`
	LoadedParts map[string]float64      `json:"crypto_floor_under_load_parts_us"`
	TargetRate  float64                 `json:"target_rate"`
	MaxRPS      float64                 `json:"max_requests_per_s"`
	P99ToP50    float64                 `json:"p99_to_p50"`
	SignedAhead int                     `json:"signed_ahead"`
	RanOut      bool                    `json:"signed_ahead_ran_out"`
	ConnsOpened *int64                  `json:"connections_opened"`
}

type benchProcess struct {
	CPU         float64  `json:"cpu_s"`
	RSS         float64  `json:"peak_rss_mib"`
	CPUPerReqUS float64  `json:"cpu_per_request_us"`
	Switches    float64  `json:"context_switches_per_request"`
	Reads       float64  `json:"read_syscalls_per_request"`
	Writes      float64  `json:"write_syscalls_per_request"`
	Faults      *float64 `json:"minor_page_faults_per_request"`
}

// TestBenchReportsAgainstTheRealStack runs signer-bench against the real
// binaries, closed loop, at a fixed rate and at a fraction of the maximum it
// measures first, and checks what the report
// says: every request answered, the rate held, latencies ordered, the
// server's CPU read from /proc and set against the crypto floor.
func TestBenchReportsAgainstTheRealStack(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		args   []string
		rate   float64
		inline bool
	}{
		{"closed loop", []string{"--concurrency", "8", "--duration", "3s"}, 0, false},
		{"closed loop signing inline", []string{"--concurrency", "8", "--duration", "2s", "--sign-inline"}, 0, true},
		{"fixed rate", []string{"--concurrency", "8", "--duration", "3s", "--rate", "40"}, 40, false},
		{"fraction of the maximum", []string{"--concurrency", "8", "--duration", "3s", "--rate-of-max", "0.05", "--max-duration", "2s"}, -1, false},
		{"HTTP/1.1 closed loop", []string{"--concurrency", "8", "--duration", "2s", "--http1"}, 0, false},
	} {
		out := filepath.Join(t.TempDir(), "report.json")
		args := append([]string{"--dev", e.dir, "--parent", e.parent, "--out", out,
			"--pid", fmt.Sprintf("parent=%d", e.parentP.cmd.Process.Pid), "--pid", fmt.Sprintf("enclave=%d", e.enclave.cmd.Process.Pid)}, tc.args...)
		if b, err := execBench(args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: signer-bench: %v\n%s", tc.name, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var r benchReport
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: report: %v", tc.name, err)
		}
		if r.Requests == 0 || r.OK != r.Requests || len(r.Errors) != 0 {
			t.Fatalf("%s: %d requests, %d ok, errors %v", tc.name, r.Requests, r.OK, r.Errors)
		}
		switch {
		case tc.inline && r.SignedAhead != 0:
			t.Fatalf("%s: signed %d requests ahead", tc.name, r.SignedAhead)
		case !tc.inline && r.SignedAhead < int(r.Requests):
			t.Fatalf("%s: sent %d requests, %d signed ahead", tc.name, r.Requests, r.SignedAhead)
		case tc.rate > 0 && r.RanOut:
			t.Fatalf("%s: ran out of requests signed ahead at a fixed rate", tc.name)
		}
		// The window measures callers whose connections are open: the
		// warm-up opened them (over HTTP/1.1, one per concurrent caller).
		if r.ConnsOpened == nil || *r.ConnsOpened != 0 {
			t.Fatalf("%s: the window dialled connections: connections_opened %v", tc.name, fmtPtr(r.ConnsOpened))
		}
		if l := r.Latency; !(0 < l["p50"] && l["p50"] <= l["p90"] && l["p90"] <= l["p99"] && l["p99"] <= l["max"]) {
			t.Fatalf("%s: latency percentiles out of order: %v", tc.name, l)
		}
		if tc.rate < 0 { // the rate is a fraction of the maximum measured first
			if r.MaxRPS <= 0 || r.TargetRate < 0.049*r.MaxRPS || r.TargetRate > 0.051*r.MaxRPS {
				t.Fatalf("%s: target %.1f req/s from a maximum of %.1f, want 5%%", tc.name, r.TargetRate, r.MaxRPS)
			}
			tc.rate = r.TargetRate
		} else if r.MaxRPS != 0 {
			t.Fatalf("%s: reported a maximum of %.1f it did not measure", tc.name, r.MaxRPS)
		}
		if got := r.Latency["p99"] / r.Latency["p50"]; r.P99ToP50 != got {
			t.Fatalf("%s: p99_to_p50 %v, latencies say %v", tc.name, r.P99ToP50, got)
		}
		if tc.rate > 0 {
			// The due times hold the rate.
			if r.RPS < 0.9*tc.rate || r.RPS > 1.1*tc.rate+1 {
				t.Fatalf("%s: %.1f req/s, asked for %.0f", tc.name, r.RPS, tc.rate)
			}
			if r.Service["p50"] <= 0 || r.Service["p50"] > r.Latency["p50"] {
				t.Fatalf("%s: service latency %v, latency from due time %v", tc.name, r.Service, r.Latency)
			}
		} else if r.Service != nil {
			t.Fatalf("%s: closed loop reported a separate service latency %v", tc.name, r.Service)
		}
		var cpu float64
		for _, name := range []string{"parent", "enclave"} {
			p, ok := r.Processes[name]
			// Every request is read from a socket and answered on one,
			// by both servers.
			if !ok || p.CPU <= 0 || p.RSS <= 0 || p.Reads <= 0 || p.Writes <= 0 || p.Switches <= 0 || p.Faults == nil || *p.Faults < 0 {
				t.Fatalf("%s: %s process cost %+v", tc.name, name, p)
			}
			cpu += p.CPU
		}
		// The generator sent every request and read every answer; the
		// cores busy cannot be more than the machine has.
		if g := r.Generator; g == nil || g.CPU <= 0 || g.Writes <= 0 || g.Reads <= 0 || r.Cores <= 0 || r.CoresBusy <= 0 ||
			r.CoresBusy > float64(r.Cores)*1.05 {
			t.Fatalf("%s: generator %+v, %.2f of %d cores busy, servers %.2f CPU s", tc.name, r.Generator, r.CoresBusy, r.Cores, cpu)
		}
		if got, want := r.CPUPerReqUS, cpu/float64(r.Requests)*1e6; got < 0.99*want || got > 1.01*want {
			t.Fatalf("%s: server CPU per request %.1f µs, the processes' CPU says %.1f", tc.name, got, want)
		}
		for _, parts := range []map[string]float64{r.FloorParts, r.LoadedParts} {
			for _, part := range []string{"verify_request_signature", "derive_wallet_key", "secp256k1_sign", "sign_response"} {
				if parts[part] <= 0 {
					t.Fatalf("%s: crypto floor part %s = %v in %v", tc.name, part, parts[part], parts)
				}
			}
		}
		if r.Floor <= 0 || r.LoadedFloor <= 0 || r.Ratio != r.CPUPerReqUS/r.Floor || r.LoadedRatio != r.CPUPerReqUS/r.LoadedFloor {
			t.Fatalf("%s: floor %.1f ratio %.3f, under load %.1f ratio %.3f, server %.1f µs", tc.name, r.Floor, r.Ratio, r.LoadedFloor, r.LoadedRatio, r.CPUPerReqUS)
		}
	}
}

func TestBenchRefusesContradictoryRates(t *testing.T) {
	for _, args := range [][]string{
		{"--rate", "10", "--rate-of-max", "0.5"},
		{"--rate-of-max", "1.5"},
		{"--rate-of-max", "-0.1"},
		{"--rate-of-max", "0.5", "--max-duration", "0s"},
		{"--rate", "-1"},
		{"--sweep", "--rate", "10"},
		{"--sweep", "--rate-of-max", "0.5"},
		{"--sweep", "--max-duration", "0s"},
		{"--sweep", "--sweep-steps", "0.5,0.2"},
		{"--sweep", "--sweep-steps", "3"},
		{"--svg", "curve.svg"},
		{"--sweep-steps", "0.5"},
	} {
		cmd := execBench(append([]string{"--parent", "https://127.0.0.1:1"}, args...)...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != 2 {
			t.Fatalf("bench %v: exit %d (%v), want 2 (usage)\n%s", args, code, err, out)
		}
	}
}

// TestBenchSweepAgainstTheRealStack runs a short --sweep against the real
// binaries and checks its curve: each step offered its fraction of the
// maximum measured first and achieved it at these low loads, with ordered
// latencies and the servers' CPU; the SVG is well-formed XML with the five
// lines, one point per step.
func TestBenchSweepAgainstTheRealStack(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	out, svg := filepath.Join(dir, "sweep.json"), filepath.Join(dir, "sweep.svg")
	fractions := []float64{0.05, 0.1}
	cmd := execBench("--dev", e.dir, "--parent", e.parent, "--out", out, "--svg", svg, "--concurrency", "8",
		"--sweep", "--sweep-steps", "0.05,0.1", "--duration", "2s", "--max-duration", "2s",
		"--pid", fmt.Sprintf("parent=%d", e.parentP.cmd.Process.Pid), "--pid", fmt.Sprintf("enclave=%d", e.enclave.cmd.Process.Pid))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("signer-bench --sweep: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		MaxRPS float64 `json:"max_requests_per_s"`
		Steps  []struct {
			Fraction float64 `json:"fraction_of_max"`
			benchReport
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v", err)
	}
	if r.MaxRPS <= 0 || len(r.Steps) != len(fractions) {
		t.Fatalf("maximum %.1f req/s, %d steps; want a maximum and %d steps", r.MaxRPS, len(r.Steps), len(fractions))
	}
	for i, st := range r.Steps {
		want := fractions[i] * r.MaxRPS
		switch {
		case st.Fraction != fractions[i] || st.TargetRate < 0.99*want || st.TargetRate > 1.01*want:
			t.Fatalf("step %d: fraction %v offered %.1f req/s, want %v of %.1f", i, st.Fraction, st.TargetRate, fractions[i], r.MaxRPS)
		case st.Requests == 0 || st.OK != st.Requests || len(st.Errors) != 0:
			t.Fatalf("step %d: %d requests, %d ok, errors %v", i, st.Requests, st.OK, st.Errors)
		case st.RPS < 0.9*st.TargetRate || st.RPS > 1.1*st.TargetRate+1:
			t.Fatalf("step %d: achieved %.1f req/s of %.1f offered", i, st.RPS, st.TargetRate)
		case !(0 < st.Latency["p50"] && st.Latency["p50"] <= st.Latency["p99"]):
			t.Fatalf("step %d: latency %v", i, st.Latency)
		case st.CPUPerReqUS <= 0 || st.Floor <= 0:
			t.Fatalf("step %d: server CPU per request %.1f µs, floor %.1f", i, st.CPUPerReqUS, st.Floor)
		}
	}
	f, err := os.Open(svg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[int]int{} // points per polyline → how many
	dec := xml.NewDecoder(f)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("svg: %v", err)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "polyline" {
			for _, a := range el.Attr {
				if a.Name.Local == "points" {
					lines[len(strings.Fields(a.Value))]++
				}
			}
		}
	}
	if lines[len(fractions)] != 5 || len(lines) != 1 {
		t.Fatalf("svg polylines by point count %v, want 5 of %d points", lines, len(fractions))
	}
}

func fmtPtr(p *int64) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

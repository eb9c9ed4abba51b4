package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/procs"
	"github.com/nitro-signer/nitro-signer/internal/s3test"
)

var (
	binDir   string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nitro-signer-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	buildErr = build(dir)
	// The fleet tests share one S3 server (internal/s3test).
	code := s3test.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the binaries the tests start: the development enclave, the
// production enclave (to show it refuses to start here) and the parent.
// Under `go test -race` they are built with the race detector too, so the
// whole stack runs under it (race_test.go).
func build(dir string) error {
	for _, b := range []struct{ out, tags, pkg string }{
		{"enclave", "nsmsim", "../enclave/cmd/enclave"},
		{"enclave-production", "", "../enclave/cmd/enclave"},
		{"parent", "", "../parent/cmd/parent"},
		{"signerctl", "", "../client/cmd/signerctl"},
		{"signer-bench", "", "./cmd/signer-bench"},
	} {
		args := []string{"build", "-trimpath", "-o", filepath.Join(dir, b.out)}
		if b.tags != "" {
			args = append(args, "-tags", b.tags)
		}
		cgo := "CGO_ENABLED=0"
		if raceDetector {
			args, cgo = append(args, "-race"), "CGO_ENABLED=1"
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Env = append(os.Environ(), cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", b.out, err, out)
		}
	}
	return nil
}

// env is one running system: a development PKI, an enclave and a parent.
type env struct {
	t        *testing.T
	dir      string // holds pki/, nsm/ and the logs
	sock     string
	parent   string // https://127.0.0.1:PORT
	enclave  *proc
	parentP  *proc
	pcrs     map[int][]byte
	devRoots []*x509.Certificate
	// name prefixes the files of this stack when several share dir.
	name string
	// enclaveExtra and parentExtra are added to every start.
	enclaveExtra, parentExtra []string
	// bin is the enclave binary in binDir; empty means "enclave".
	bin string
	// parentEnv is added to the parent's environment.
	parentEnv []string
}

type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	mu     sync.Mutex
	lines  []string
	exited error
}

func (p *proc) waitLine(t *testing.T, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.Contains(l, substr) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			t.Fatalf("process exited (%v) before logging %q:\n%s", p.exited, substr, strings.Join(p.lines, "\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no log line with %q after %s", substr, timeout)
	return ""
}

// start runs a binary, copying its stderr to logPath and keeping its lines.
func start(t *testing.T, logPath, bin string, args ...string) *proc {
	t.Helper()
	return startEnv(t, logPath, bin, nil, args...)
}

// startEnv is start with environ added to the environment.
func startEnv(t *testing.T, logPath, bin string, environ []string, args ...string) *proc {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	cmd := exec.Command(filepath.Join(binDir, bin), args...)
	// As deployed (Dockerfile.enclave, the parent's unit), after any
	// GODEBUG of this process's own, unless the test's environ says
	// otherwise: the last of duplicate keys wins, in GODEBUG as in Env.
	godebug := procs.GODEBUG
	if g := os.Getenv("GODEBUG"); g != "" {
		godebug = g + "," + godebug
	}
	cmd.Env = append(append(os.Environ(), "GODEBUG="+godebug), environ...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.exited = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		p.checkRaces(t)
	})
	return p
}

// skipMemoryBoundUnderRace skips a test that holds a process to a memory
// bound: under the race detector its shadow memory multiplies what every
// process holds, so the bound says nothing there.
func skipMemoryBoundUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("holds a memory bound, which the race detector's shadow memory breaks: run it without -race")
	}
}

// raceWarning opens each report of the race detector (binaries built under
// `go test -race`, see build).
const raceWarning = "WARNING: DATA RACE"

// checkRaces fails the test if the stopped process reported a data race.
func (p *proc) checkRaces(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.lines {
		if strings.Contains(l, raceWarning) {
			end := min(i+60, len(p.lines))
			t.Errorf("%s reported a data race:\n%s", filepath.Base(p.cmd.Path), strings.Join(p.lines[i:end], "\n"))
			return
		}
	}
}

// load runs call in n goroutines, over and over, until the returned stop
// is called; stop waits for them.
func load(n int, call func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				call()
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

// execSignerctl prepares a run of the signerctl binary.
func execSignerctl(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(binDir, "signerctl"), args...)
}

// execBench prepares a run of the signer-bench binary.
func execBench(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(binDir, "signer-bench"), args...)
}

// stop sends SIGTERM and waits; kill is SIGKILL.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// newEnv creates a PKI and starts an enclave and a parent. enclaveArgs are
// extra enclave flags.
func newEnv(t *testing.T, enclaveArgs ...string) *env {
	t.Helper()
	return newEnvConfigured(t, nil, nil, enclaveArgs...)
}

// newEnvConfigured is newEnv with the enclave's configuration passed
// through edit (nil: as generated) and extra parent flags.
func newEnvConfigured(t *testing.T, edit func(cfg map[string]any), parentArgs []string, enclaveArgs ...string) *env {
	t.Helper()
	dir := t.TempDir()
	if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		editConfig(t, filepath.Join(dir, "pki", devpki.EnclaveJSON), edit)
	}
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "enclave.sock"), parentExtra: parentArgs}
	if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
		t.Fatal(err)
	}
	e.startEnclave(enclaveArgs...)
	e.startParent("unix://" + e.sock)
	return e
}

func (e *env) startEnclave(extra ...string) {
	e.t.Helper()
	args := append([]string{"--config", filepath.Join(e.dir, "pki", devpki.EnclaveJSON),
		"--listen", "unix://" + e.sock, "--state-dir", filepath.Join(e.dir, "nsm")}, e.enclaveExtra...)
	args = append(args, extra...)
	bin := e.bin
	if bin == "" {
		bin = "enclave"
	}
	e.enclave = start(e.t, filepath.Join(e.dir, e.name+"enclave.log"), bin, args...)
	e.enclave.waitLine(e.t, "enclave serving", 20*time.Second)
	e.loadDevState()
}

func (e *env) startParent(enclaveAddr string, extra ...string) {
	e.t.Helper()
	e.launchParent(enclaveAddr, extra...)
	e.waitConnected()
}

// launchParent starts the parent and waits for it to listen, not for the
// enclave.
func (e *env) launchParent(enclaveAddr string, extra ...string) {
	e.t.Helper()
	pki := filepath.Join(e.dir, "pki")
	args := append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--enclave", enclaveAddr,
		"--tls-cert", filepath.Join(pki, devpki.ServerCert), "--tls-key", filepath.Join(pki, devpki.ServerKey),
		"--client-ca", filepath.Join(pki, devpki.CallerCAFile)}, e.parentExtra...)
	args = append(args, extra...)
	e.parentP = startEnv(e.t, filepath.Join(e.dir, e.name+"parent.log"), "parent", e.parentEnv, args...)
	line := e.parentP.waitLine(e.t, "parent serving", 20*time.Second)
	var l struct{ Listen string }
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		e.t.Fatal(err)
	}
	e.parent = "https://" + l.Listen
}

// waitConnected waits until the parent reaches the enclave.
func (e *env) waitConnected() {
	e.t.Helper()
	c := e.httpClient("broker")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get(e.parent + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatal("parent never reached the enclave")
}

func (e *env) loadDevState() {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "nsm", "pcrs.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := attestation.ParseManifest(b)
	if err != nil {
		e.t.Fatal(err)
	}
	e.pcrs = m.PCRs
	rootPEM, err := os.ReadFile(filepath.Join(e.dir, "nsm", "dev-root.pem"))
	if err != nil {
		e.t.Fatal(err)
	}
	if e.devRoots, err = attestation.ParseRootsPEM(rootPEM); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) tlsCert(role string) tls.Certificate {
	e.t.Helper()
	pki := filepath.Join(e.dir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, devpki.ClientCert(role)), filepath.Join(pki, devpki.ClientKey(role)))
	if err != nil {
		e.t.Fatal(err)
	}
	return cert
}

func (e *env) serverPool() *x509.CertPool {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "pki", devpki.ServerCAFile))
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}

func (e *env) httpClient(role string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: e.serverPool(), Certificates: []tls.Certificate{e.tlsCert(role)}}}}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// client returns a client for role pinning the enclave's PCRs.
func (e *env) client(role string, mutate ...func(*client.Config)) *client.Client {
	e.t.Helper()
	cfg := client.Config{
		URL: e.parent, Certificate: e.tlsCert(role), ServerCAs: e.serverPool(),
		Policy:   attestation.Policy{Roots: e.devRoots, PCRs: e.pcrs},
		SignerID: devpki.SignerID, Clock: time.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// rssMiB reads a process's resident set (VmRSS) in MiB.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// metricsURL is the parent's metrics endpoint.
func (e *env) metricsURL() string {
	line := e.parentP.waitLine(e.t, "parent serving", time.Second)
	var l struct{ Metrics string }
	json.Unmarshal([]byte(line), &l)
	return "http://" + l.Metrics + "/metrics"
}

// metric reads one unlabelled sample from a Prometheus scrape.
func metric(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// editConfig rewrites the enclave configuration at path through edit.
func editConfig(t *testing.T, path string, edit func(cfg map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Bounds of a weed's life.
const (
	// startAttempts: a start that fails (a port taken between choosing
	// and binding it) is tried again on other ports.
	startAttempts = 3
	readyTimeout  = 90 * time.Second
	stopTimeout   = 15 * time.Second
)

// weedOptions are what a weed of a test's own adds to the shared one's
// flags (StartSTS).
type weedOptions struct {
	// iam is the -s3.iam.config file: STS, OIDC providers, roles.
	iam []byte
	// certFile and keyFile make the S3 port (and so STS) TLS only; roots
	// verify it.
	certFile, keyFile string
	roots             *x509.CertPool
}

// weed is a running `weed mini`.
type weed struct {
	opts           weedOptions
	endpoint       string
	access, secret string
	dir            string
	log            string
	pid            int
	exited         chan struct{}
}

// identity is the one S3 identity of the server: static credentials
// (SigV4-checked on every request) allowed everything. No anonymous
// identity exists, so an unsigned or badly signed request is refused.
type identity struct {
	Name        string       `json:"name"`
	Credentials []credential `json:"credentials"`
	Actions     []string     `json:"actions"`
}

type credential struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

func startWeed(o weedOptions) (*weed, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, &missingBinary{path: bin}
	}
	var errs []error
	for range startAttempts {
		w, err := startWeedOnce(bin, o)
		if err == nil {
			return w, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func startWeedOnce(bin string, o weedOptions) (*weed, error) {
	// A short path: weed's unix sockets live here too (108 bytes at most).
	dir, err := os.MkdirTemp("", "s3test-")
	if err != nil {
		return nil, err
	}
	w := &weed{opts: o, dir: dir, log: filepath.Join(dir, "weed.log"), exited: make(chan struct{})}
	w.access, w.secret = "signertest"+randomHex(8), randomHex(24)
	conf, _ := json.Marshal(map[string][]identity{"identities": {{
		Name:        "signer-test",
		Credentials: []credential{{AccessKey: w.access, SecretKey: w.secret}},
		Actions:     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}})
	if err := os.WriteFile(filepath.Join(dir, "s3.json"), conf, 0o600); err != nil {
		return nil, w.cleanup(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, w.cleanup(err)
	}
	ports, err := freePorts(10)
	if err != nil {
		return nil, w.cleanup(err)
	}
	port := func(i int) string { return strconv.Itoa(ports[i]) }
	args := []string{
		"-logtostderr",
		"mini",
		"-dir=" + filepath.Join(dir, "data"),
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.telemetry=false",
		"-master.port=" + port(0), "-master.port.grpc=" + port(1),
		"-volume.port=" + port(2), "-volume.port.grpc=" + port(3),
		"-filer.port=" + port(4), "-filer.port.grpc=" + port(5),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3.port=" + port(6), "-s3.port.grpc=" + port(7),
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
		"-s3.config=" + filepath.Join(dir, "s3.json"),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-webdav=false",
		"-admin.ui=false", "-admin.port=" + port(8), "-admin.port.grpc=" + port(9), "-admin.port.legacy=0",
	}
	w.endpoint = "http://127.0.0.1:" + port(6)
	if o.iam != nil {
		if err := os.WriteFile(filepath.Join(dir, "iam.json"), o.iam, 0o600); err != nil {
			return nil, w.cleanup(err)
		}
		args = append(args, "-s3.iam.config="+filepath.Join(dir, "iam.json"))
	}
	if o.certFile != "" {
		// TLS only, on the S3 port (no -s3.port.https).
		args = append(args, "-s3.cert.file="+o.certFile, "-s3.key.file="+o.keyFile)
		w.endpoint = "https://127.0.0.1:" + port(6)
	}
	logf, err := os.Create(w.log)
	if err != nil {
		return nil, w.cleanup(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// Nothing of the test's environment (no AWS_* variable, no user's
	// configuration: weed reads ~/.seaweedfs).
	cmd.Env = []string{"HOME=" + dir, "TMPDIR=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits:
		// this goroutine keeps its thread until weed has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(w.exited)
			return
		}
		w.pid = cmd.Process.Pid
		started <- nil
		cmd.Wait()
		close(w.exited)
	}()
	if err := <-started; err != nil {
		return nil, w.cleanup(fmt.Errorf("start %s: %w", bin, err))
	}
	if err := w.waitReady(); err != nil {
		tail := w.logTail(30)
		w.stop()
		return nil, fmt.Errorf("weed mini did not become ready: %w\n%s", err, tail)
	}
	return w, nil
}

// waitReady waits until the S3 gateway answers a signed ListBuckets and,
// with an IAM configuration, STS answers: weed serves S3 without STS when
// its IAM file does not load.
func (w *weed) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	srv := &Server{Endpoint: w.endpoint, AccessKey: w.access, SecretKey: w.secret, Region: DefaultRegion, RootCAs: w.opts.roots}
	c := srv.Client()
	var last error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.ListBuckets(callCtx, nil)
		if err == nil && w.opts.iam != nil {
			err = srv.stsAnswers(callCtx)
		}
		callCancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-w.exited:
			return errors.New("weed exited")
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", readyTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends weed's process group: SIGTERM, then SIGKILL if it lingers;
// then removes its files.
func (w *weed) stop() {
	if w.pid > 0 {
		syscall.Kill(-w.pid, syscall.SIGTERM)
		select {
		case <-w.exited:
		case <-time.After(stopTimeout):
		}
		// What is left of the group (weed forks nothing today) goes too.
		syscall.Kill(-w.pid, syscall.SIGKILL)
		<-w.exited
	}
	os.RemoveAll(w.dir)
}

func (w *weed) cleanup(err error) error {
	os.RemoveAll(w.dir)
	return err
}

// logTail is the last n lines of weed's log.
func (w *weed) logTail(n int) string {
	b, _ := os.ReadFile(w.log)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePorts are n distinct loopback ports free a moment ago. weed binds
// ports it is given or fails, so a port taken since is a failed start,
// tried again.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
)

// A rollout replaces the enclave image A by B with no downtime: B starts
// behind its own parent beside A, obtains the keyring, takes the traffic
// from a load balancer, and A stops; then A is retired from the manifest.
// Clients hold a releases.json allowing both throughout, and load runs the
// whole time. These tests are the procedure of docs/operations.md §4,
// with two development builds that differ only in a build-time variable
// (-X main.version), so in their measurements.

// The version of B's build; A is the development enclave of the harness.
const (
	releaseA = "rollout-a"
	releaseB = "rollout-b"
	binB     = "enclave-" + releaseB
)

var (
	variantsMu sync.Mutex
	variants   = map[string]error{}
)

// buildVariant builds the development enclave with -X main.version=version
// into binDir/enclave-<version>, once per test process.
func buildVariant(t *testing.T, version string) string {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	name := "enclave-" + version
	variantsMu.Lock()
	defer variantsMu.Unlock()
	err, done := variants[name]
	if !done {
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "nsmsim", "-ldflags", "-X main.version="+version,
			"-o", filepath.Join(binDir, name), "../enclave/cmd/enclave")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("building %s: %v\n%s", name, berr, out)
		}
		variants[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// rollout is what both cases share: one development PKI and root, the two
// builds and their releases, the manifests and the enclave configurations.
type rollout struct {
	t   *testing.T
	dir string
	// a and b are the two releases, from each build's pcrs.json.
	a, b attestation.Release
	// manifests: both releases, and each alone.
	both, onlyA, onlyB string
	// configA and configB are the enclave configurations: each names the
	// other release as a peer.
	configA, configB string
}

func newRollout(t *testing.T) *rollout {
	t.Helper()
	r := &rollout{t: t, dir: t.TempDir()}
	if err := devpki.Generate(filepath.Join(r.dir, "pki"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "nsm"), 0o700); err != nil {
		t.Fatal(err)
	}
	buildVariant(t, releaseB)
	notBefore := time.Now().Add(-time.Hour).Truncate(time.Second)
	r.a = r.release(releaseA, "enclave", "dev", notBefore)
	r.b = r.release(releaseB, binB, releaseB, notBefore)
	if string(r.a.PCRs[0]) == string(r.b.PCRs[0]) || string(r.a.PCRs[2]) == string(r.b.PCRs[2]) {
		t.Fatal("the two builds have the same PCR0 or PCR2: they are not two images")
	}
	r.both = r.manifest("releases.json", r.a, r.b)
	r.onlyA = r.manifest("releases-a.json", r.a)
	r.onlyB = r.manifest("releases-b.json", r.b)
	// B, the newer image, names A by its PCRs. A names B the same way,
	// which only a development build can do: its configuration is not
	// measured, while a production image's is, and an image can name a
	// release built after it only by its signing certificate (PCR8).
	r.configA = r.config("a-enclave.json", func(cfg map[string]any) { cfg["peers"] = r.peers(r.b) })
	r.configB = r.config("b-enclave.json", func(cfg map[string]any) { cfg["peers"] = r.peers(r.a) })
	return r
}

// release starts the build bin (whose -X main.version is built) once
// without keys, as `make run` would, and makes release version from the
// pcrs.json it writes.
func (r *rollout) release(version, bin, built string, notBefore time.Time) attestation.Release {
	r.t.Helper()
	probe := &env{t: r.t, dir: r.dir, name: "probe-" + version + "-", sock: filepath.Join(r.dir, "probe-"+version+".sock"), bin: bin}
	probe.startEnclave("--no-keys")
	probe.enclave.waitLine(r.t, `"version":"`+built+`"`, time.Second)
	probe.enclave.stop()
	image, err := os.ReadFile(filepath.Join(binDir, bin))
	if err != nil {
		r.t.Fatal(err)
	}
	eif := sha256.Sum256(image) // the development image is the binary
	return attestation.Release{Version: version, PCRs: map[int][]byte{0: probe.pcrs[0], 1: probe.pcrs[1], 2: probe.pcrs[2]},
		EIFSHA256: eif[:], NotBefore: notBefore, Match: []int{0, 1, 2}}
}

func (r *rollout) manifest(name string, releases ...attestation.Release) string {
	r.t.Helper()
	b, err := (&attestation.Releases{Releases: releases}).Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// peers is a configuration's peers member: a releases.json document.
func (r *rollout) peers(releases ...attestation.Release) json.RawMessage {
	r.t.Helper()
	b, err := (&attestation.Releases{Releases: releases}).Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// config writes the development configuration, changed by edit, as name.
func (r *rollout) config(name string, edit func(cfg map[string]any)) string {
	r.t.Helper()
	path := filepath.Join(r.dir, name)
	b, err := os.ReadFile(filepath.Join(r.dir, "pki", devpki.EnclaveJSON))
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	editConfig(r.t, path, edit)
	return path
}

// client is a client of role at url accepting the releases of manifest.
func (r *rollout) client(e *env, url, role, manifest string) *client.Client {
	r.t.Helper()
	b, err := os.ReadFile(manifest)
	if err != nil {
		r.t.Fatal(err)
	}
	rs, err := attestation.ParseReleases(b)
	if err != nil {
		r.t.Fatal(err)
	}
	return e.client(role, func(cfg *client.Config) {
		cfg.URL = url
		cfg.Policy.PCRs = nil
		cfg.Policy.Allowed = rs.Measurements()
	})
}

// balancer is a TCP load balancer with TLS passthrough (as an NLB in front
// of the parents): each new connection goes to the current backend.
type balancer struct {
	ln      net.Listener
	mu      sync.Mutex
	backend string
	conns   map[net.Conn]bool
}

func startBalancer(t *testing.T, backend string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *balancer) url() string { return "https://" + b.ln.Addr().String() }

// route sends new connections to backend; open ones stay where they are
// until either end closes them.
func (b *balancer) route(backend string) {
	b.mu.Lock()
	b.backend = backend
	b.mu.Unlock()
}

func (b *balancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.relay(c)
	}
}

func (b *balancer) relay(c net.Conn) {
	b.mu.Lock()
	backend := b.backend
	b.mu.Unlock()
	s, err := net.DialTimeout("tcp", backend, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	b.mu.Lock()
	b.conns[c], b.conns[s] = true, true
	b.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done // either end closed: close both
	c.Close()
	s.Close()
	<-done
	b.mu.Lock()
	delete(b.conns, c)
	delete(b.conns, s)
	b.mu.Unlock()
}

func (b *balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

func hostPort(parentURL string) string { return strings.TrimPrefix(parentURL, "https://") }

// traffic is load on derive-address from several goroutines, each answer
// checked against the addresses before the rollout. A call that fails in
// transport (connection refused or reset, the parent's own unsigned
// answer) is retried a few times; an enclave's signed refusal, a refused
// attestation or response, or a wrong address is a failure at once.
type traffic struct {
	requests, ok, retried, retries, failed atomic.Int64
	mu                                     sync.Mutex
	failures, retriedErrs                  []string
	stop                                   func()
}

const trafficAttempts = 5

func startTraffic(workers int, c *client.Client, want map[string]keyView, epochs uint32) *traffic {
	tr := &traffic{}
	var n atomic.Uint64
	tr.stop = load(workers, func() {
		i := n.Add(1)
		omni := keyOmnis[i%uint64(len(keyOmnis))]
		epoch := uint32(i/uint64(len(keyOmnis)))%epochs + 1
		tr.call(c, omni, epoch, want[omni][epoch][0])
	})
	return tr
}

// retryable: the failure is the transport's, not an answer.
func retryable(err error) bool {
	var refusal *api.Error
	return !errors.As(err, &refusal) && !errors.Is(err, client.ErrAttestation) && !errors.Is(err, client.ErrResponse)
}

func (tr *traffic) call(c *client.Client, omni string, epoch uint32, want string) {
	tr.requests.Add(1)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := c.DeriveAddress(ctx, omni, epoch)
		cancel()
		switch {
		case err == nil && got.Address == want:
			tr.ok.Add(1)
			if attempt > 1 {
				tr.retried.Add(1)
			}
			return
		case err == nil:
			tr.fail(fmt.Sprintf("omni %s epoch %d derived %s, before the rollout %s", omni[:8], epoch, got.Address, want))
			return
		case !retryable(err) || attempt == trafficAttempts:
			tr.fail(fmt.Sprintf("attempt %d: %v", attempt, err))
			return
		}
		tr.retries.Add(1)
		tr.mu.Lock()
		if len(tr.retriedErrs) < 5 {
			tr.retriedErrs = append(tr.retriedErrs, err.Error())
		}
		tr.mu.Unlock()
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
	}
}

func (tr *traffic) fail(what string) {
	tr.failed.Add(1)
	tr.mu.Lock()
	if len(tr.failures) < 10 {
		tr.failures = append(tr.failures, what)
	}
	tr.mu.Unlock()
}

// awaitOK waits until n more calls have succeeded.
func (tr *traffic) awaitOK(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	target := tr.ok.Load() + n
	deadline := time.Now().Add(timeout)
	for tr.ok.Load() < target {
		if time.Now().After(deadline) || tr.failed.Load() > 0 {
			tr.stop()
			t.Fatalf("traffic: %d ok, %d failed, waiting for %d; failures %q", tr.ok.Load(), tr.failed.Load(), target, tr.failures)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reportEnv names a file the end-to-end tests append their headline
// numbers to, one line each: go test shows a passing package's output only
// with -v, so `make test` sets it and prints the file.
const reportEnv = "NITRO_SIGNER_E2E_REPORT"

func report(t *testing.T, line string) {
	t.Helper()
	t.Log(line)
	path := os.Getenv(reportEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("%s: %v", reportEnv, err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// rollOut moves the traffic from a to b under load and retires a: the
// steps after b holds the keyring, common to both ways of getting it.
// bringUp starts b and gives it the keyring; it runs while the load does.
func (r *rollout) rollOut(t *testing.T, how string, a *env, bringUp func() *env) {
	const epochs = 3
	for range epochs - 1 {
		if _, err := a.client("admin").RotateKeys(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	lb := startBalancer(t, hostPort(a.parent))
	c := r.client(a, lb.url(), "broker", r.both)
	want := a.keyView(c, epochs)
	if at, err := c.Attest(ctx(t)); err != nil || at.Document.Measurement != releaseA {
		t.Fatalf("before the rollout the balancer reaches %+v, %v; want release %s", at, err, releaseA)
	}

	started := time.Now()
	tr := startTraffic(4, c, want, epochs)
	tr.awaitOK(t, 50, 10*time.Second)

	b := bringUp()
	b.waitReady()
	// B answers as A did before it takes any traffic.
	sameView(t, "B before it takes traffic", b.keyView(r.client(b, b.parent, "broker", r.both), epochs), want)
	tr.awaitOK(t, 50, 10*time.Second)

	// The balancer sends new connections to B; A's parent drains and
	// stops, then A's enclave.
	lb.route(hostPort(b.parent))
	a.parentP.stop()
	a.enclave.stop()
	tr.awaitOK(t, 200, 20*time.Second)
	tr.stop()
	line := fmt.Sprintf("rollout by %s: %d requests in %s, %d ok, %d retried (%d retries), %d failed",
		how, tr.requests.Load(), time.Since(started).Round(time.Millisecond), tr.ok.Load(), tr.retried.Load(), tr.retries.Load(), tr.failed.Load())
	report(t, line)
	if len(tr.retriedErrs) > 0 {
		t.Logf("retried after: %q", tr.retriedErrs)
	}
	if tr.failed.Load() != 0 || tr.ok.Load() != tr.requests.Load() {
		t.Fatalf("%s; failures: %q", line, tr.failures)
	}

	// The same addresses and KEKs under every epoch, through the balancer,
	// now from B.
	if at, err := c.Attest(ctx(t)); err != nil || at.Document.Measurement != releaseB {
		t.Fatalf("after the rollout the balancer reaches %+v, %v; want release %s", at, err, releaseB)
	}
	sameView(t, "after the rollout", b.keyView(c, epochs), want)

	r.retire(t, b, lb, want)
}

// retire removes A from the manifest: a client of B's release alone works,
// and one holding only A's measurement refuses B for its PCRs, in the
// client and in signerctl attest verify.
func (r *rollout) retire(t *testing.T, b *env, lb *balancer, want map[string]keyView) {
	onlyB := r.client(b, lb.url(), "broker", r.onlyB)
	got, err := onlyB.DeriveAddress(ctx(t), omniHex, 1)
	if err != nil || got.Address != want[omniHex][1][0] {
		t.Fatalf("a client of B's release alone: %+v, %v", got, err)
	}
	_, err = r.client(b, lb.url(), "broker", r.onlyA).Attest(ctx(t))
	if !errors.Is(err, client.ErrAttestation) || attestation.Rule(err) != "pcr_mismatch" {
		t.Fatalf("a client of A's release alone attested B: %v, want rule pcr_mismatch", err)
	}
	pinnedA := b.client("broker", func(cfg *client.Config) {
		cfg.URL = lb.url()
		cfg.Policy.PCRs = r.a.PCRs
	})
	if _, err := pinnedA.Attest(ctx(t)); !errors.Is(err, attestation.ErrPCRMismatch) {
		t.Fatalf("a client pinning A's PCRs attested B: %v", err)
	}

	doc := filepath.Join(r.dir, "b-document.cbor")
	if err := os.WriteFile(doc, b.attestationOver(randomNonce()), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(r.dir, "nsm", "dev-root.pem")
	var stdout, stderr strings.Builder
	cmd := execSignerctl("attest", "verify", "--doc", doc, "--root", root, "--releases", r.onlyA)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "rule=pcr_mismatch") {
		t.Fatalf("attest verify of B against A's release: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	out, err := execSignerctl("attest", "verify", "--doc", doc, "--root", root, "--releases", r.onlyB).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"release": "`+releaseB+`"`) {
		t.Fatalf("attest verify of B against its release: %v\n%s", err, out)
	}
}

// TestRolloutByPeerCopy: B starts without keys behind its own parent and
// state store; an operator copies the keyring from A with signerctl keys
// sync (each enclave verifying the other against the release its
// configuration names); B takes the traffic and A stops.
func TestRolloutByPeerCopy(t *testing.T) {
	r := newRollout(t)
	a := newSealedEnvOf(t, r.dir, "a-", "", "--config", r.configA)
	r.rollOut(t, "peer copy", a, func() *env {
		b := newSealedEnvOf(t, r.dir, "b-", binB, "--no-keys", "--config", r.configB)
		if ready, reason := b.readiness(func(bool, string) bool { return true }, 5*time.Second); ready {
			t.Fatalf("B is ready before it has keys: %s", reason)
		}
		out, err := execSignerctl("keys", "sync", "--dev", r.dir, "--releases", r.both, "--parent", b.parent,
			"--from-dev", r.dir, "--from-releases", r.both, "--from-parent", a.parent).CombinedOutput()
		if err != nil {
			t.Fatalf("keys sync from A to B: %v\n%s", err, out)
		}
		// Each side judged the other as the release its configuration names.
		a.enclave.waitLine(t, `"peer_release":"`+releaseB+`"`, time.Second)
		b.enclave.waitLine(t, `"peer_release":"`+releaseA+`"`, time.Second)
		return b
	})
}

// The attacker is a hostile parent on B's side, relaying a peer copy from A
// to an enclave it chose: one of a release no configuration names, or B
// running a configuration whose peer entry for A has expired. A refuses
// the first before it encrypts anything; the second refuses A. Neither
// receives a key.
func TestRolloutPeerCopyRefuses(t *testing.T) {
	r := newRollout(t)
	a := newSealedEnvOf(t, r.dir, "a-", "", "--config", r.configA)
	other := filepath.Join(r.dir, "unlisted-image")
	if err := os.WriteFile(other, []byte("an enclave image no release names"), 0o644); err != nil {
		t.Fatal(err)
	}
	expired := r.a
	expired.NotAfter = time.Now().Add(-time.Minute).Truncate(time.Second)
	expiredConfig := r.config("b-expired-enclave.json", func(cfg map[string]any) { cfg["peers"] = r.peers(expired) })
	for _, tc := range []struct {
		name string
		args []string
		rule string
		// refuser is the enclave that refuses: a, or nil for the receiver.
		refuser *env
	}{
		{"bad_receiver_of_an_unlisted_release", []string{"--config", r.configB, "--sim-image", other}, "pcr_mismatch", a},
		{"bad_sender_of_an_expired_release", []string{"--config", expiredConfig}, "release_expired", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newSealedEnvOf(t, r.dir, tc.name+"-", binB, append([]string{"--no-keys"}, tc.args...)...)
			// The operator's tool accepts any enclave (it only relays):
			// the enclaves themselves must refuse.
			pcrs := filepath.Join(r.dir, tc.name+"-pcrs.json")
			m, _ := (&attestation.Manifest{PCRs: b.pcrs}).Marshal()
			os.WriteFile(pcrs, m, 0o644)
			out, err := execSignerctl("keys", "sync", "--dev", r.dir, "--pcrs", pcrs, "--parent", b.parent,
				"--from-dev", r.dir, "--from-releases", r.both, "--from-parent", a.parent).CombinedOutput()
			refusal := "peer_attestation_refused: peer attestation: " + tc.rule
			if err == nil || !strings.Contains(string(out), refusal) {
				t.Fatalf("keys sync to %s: %v\n%s\nwant %q", tc.name, err, out, refusal)
			}
			refuser := tc.refuser
			if refuser == nil {
				refuser = b
			}
			refuser.enclave.waitLine(t, `"msg":"peer attestation refused","rule":"`+tc.rule+`"`, time.Second)
			if st, err := b.client("admin").KeyStatus(ctx(t)); err != nil || st.Epoch != 0 || st.Ready {
				t.Fatalf("the receiver after the refusal: %+v, %v", st, err)
			}
			if entries, _ := os.ReadDir(b.stateDir()); len(entries) != 0 {
				t.Fatalf("the receiver's store holds %d files", len(entries))
			}
		})
	}
}

// TestRolloutByKMSUnsealing is the other way: B unseals the keyring A
// sealed, through the local KMS enforcing the key policy signerctl renders
// from releases.json. Under A's policy alone B is refused for its PCRs;
// with the policy of both releases put, B (given A's sealed state, as a
// restored store or a shared bucket would) unseals the same keyring under
// load, traffic moves to B, and A is retired from the manifest and from the
// key policy, under which B restarts and unseals again.
func TestRolloutByKMSUnsealing(t *testing.T) {
	r := newRollout(t)
	const (
		keyARN = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
		role   = "arn:aws:iam::111122223333:role/signer-role" // the role StartIMDS serves
	)
	render := func(releases string) []byte {
		t.Helper()
		out, err := execSignerctl("kms", "policy", "--releases", releases, "--role", role, "--signer-id", devpki.SignerID).Output()
		if err != nil {
			t.Fatalf("kms policy --releases %s: %v", releases, err)
		}
		return out
	}
	check := func(kms *kmstest.Server, releases string) {
		t.Helper()
		cmd := execSignerctl("kms", "check", "--releases", releases, "--role", role, "--signer-id", devpki.SignerID, "--policy", "-")
		cmd.Stdin = bytes.NewReader(kms.KeyPolicy())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kms check --releases %s against the live policy: %v\n%s", releases, err, out)
		}
	}
	policy := kmstest.Policy{KeyID: keyARN, KeyPolicy: render(r.onlyA), Region: "us-east-1",
		AccessKeyID: "ASIAE2ELOCALKMS00001", SecretAccessKey: "e2e-secret-access-key-0123456789abcdefABCDEF",
		SessionToken: "e2e-session-token-fedcba9876543210-session"}
	rootPEM, err := os.ReadFile(filepath.Join(r.dir, "nsm", "dev-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if policy.Roots, err = attestation.ParseRootsPEM(rootPEM); err != nil {
		t.Fatal(err)
	}
	kms, err := kmstest.Start(policy)
	if err != nil {
		t.Fatal(err)
	}
	defer kms.Close()
	imds := kmstest.StartIMDS(policy)
	defer imds.Close()
	check(kms, r.onlyA)
	for _, path := range []string{r.configA, r.configB} {
		editConfig(t, path, func(cfg map[string]any) { cfg["sealing"] = kmsSealing(kms, keyARN) })
	}

	a := newKMSEnv(t, r.dir, "a-", "", kms, imds, "--config", r.configA)
	a.waitReady()
	if st, err := a.client("admin").KeyStatus(ctx(t)); err != nil || st.Sealer != "kms" {
		t.Fatalf("A: %+v, %v", st, err)
	}

	// Under A's policy alone, B given A's sealed state stays empty: KMS
	// refuses its Recipient document for its PCRs.
	copyDir(t, a.stateDir(), filepath.Join(r.dir, "early-state"))
	early := newKMSEnv(t, r.dir, "early-", binB, kms, imds, "--no-keys", "--config", r.configB)
	early.readiness(func(ready bool, reason string) bool {
		return !ready && strings.Contains(reason, "KMS answered AccessDeniedException")
	}, 20*time.Second)
	early.parentP.stop()
	early.enclave.stop()

	// The policy of both releases, put before B is deployed.
	if err := kms.PutKeyPolicy(render(r.both)); err != nil {
		t.Fatal(err)
	}
	check(kms, r.both)
	var b *env
	r.rollOut(t, "KMS unsealing", a, func() *env {
		copyDir(t, a.stateDir(), filepath.Join(r.dir, "b-state"))
		b = newKMSEnv(t, r.dir, "b-", binB, kms, imds, "--no-keys", "--config", r.configB)
		return b
	})

	// A retired from the key policy too: B restarts and unseals under the
	// policy of its release alone.
	if err := kms.PutKeyPolicy(render(r.onlyB)); err != nil {
		t.Fatal(err)
	}
	check(kms, r.onlyB)
	want := b.keyView(r.client(b, b.parent, "broker", r.onlyB), 3)
	b.enclave.kill()
	b.startEnclave("--no-keys", "--config", r.configB)
	b.waitReady()
	sameView(t, "B restarted under the policy of its release alone", b.keyView(r.client(b, b.parent, "broker", r.onlyB), 3), want)
}

// kmsSealing is an enclave configuration's sealing member for the local
// KMS and key.
func kmsSealing(kms *kmstest.Server, keyARN string) map[string]any {
	return map[string]any{"kind": "kms", "kms": map[string]string{
		"key_id": keyARN, "region": "us-east-1", "endpoint": kms.URL, "ca_pem": kms.CAPEM}}
}

// newKMSEnv starts a stack sealing through the local KMS, with its own
// parent, state store, host and egress sockets.
func newKMSEnv(t *testing.T, dir, name, bin string, kms *kmstest.Server, imds *kmstest.IMDS, enclaveArgs ...string) *env {
	t.Helper()
	egressSock := filepath.Join(dir, name+"egress.sock")
	hostSock := filepath.Join(dir, name+"host.sock")
	e := &env{t: t, dir: dir, name: name, sock: filepath.Join(dir, name+"enclave.sock"), bin: bin,
		enclaveExtra: []string{"--host", "unix://" + hostSock, "--egress", "unix://" + egressSock},
		parentExtra: []string{"--state-dir", filepath.Join(dir, name+"state"), "--host-listen", "unix://" + hostSock,
			"--egress-listen", "unix://" + egressSock, "--egress-allow", kms.HostPort(), "--imds", imds.URL},
	}
	e.launchParent("unix://" + e.sock)
	e.startEnclave(enclaveArgs...)
	e.waitConnected()
	return e
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

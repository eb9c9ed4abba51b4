package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/internal/s3test"
	"github.com/nitro-signer/nitro-signer/parent/state"
)

// fleetSync is the replicas' --sync-interval in these tests.
const fleetSync = 300 * time.Millisecond

// fleet is several replicas — each an enclave and a parent — sharing one
// development PKI, root and sealing key (as replicas share the AWS root
// and a KMS key) and one state store.
type fleet struct {
	t        *testing.T
	dir      string
	store    fleetStore
	replicas []*env
}

// fleetStore is the store a fleet's parents share.
type fleetStore interface {
	// parentArgs are the flags that point a parent at the store, and
	// parentEnv what it needs in its environment (credentials).
	parentArgs() []string
	parentEnv() []string
	// open is the store as the test reads it, around the parents.
	open(t *testing.T) state.Store
}

func newFleet(t *testing.T, store fleetStore) *fleet {
	t.Helper()
	return &fleet{t: t, dir: t.TempDir(), store: store}
}

// add starts a replica. The first of a fleet imports the development
// secret; later ones start with nothing (--no-keys) and take the keyring
// from the store.
func (f *fleet) add(enclaveArgs ...string) *env {
	f.t.Helper()
	name := fmt.Sprintf("r%d-", len(f.replicas))
	if len(f.replicas) > 0 {
		enclaveArgs = append([]string{"--no-keys"}, enclaveArgs...)
	}
	e := f.launch(name, enclaveArgs...)
	f.replicas = append(f.replicas, e)
	return e
}

func (f *fleet) launch(name string, enclaveArgs ...string) *env {
	f.t.Helper()
	if _, err := os.Stat(filepath.Join(f.dir, "pki", devpki.EnclaveJSON)); err != nil {
		if err := devpki.Generate(filepath.Join(f.dir, "pki"), time.Now()); err != nil {
			f.t.Fatal(err)
		}
	}
	hostSock := filepath.Join(f.dir, name+"host.sock")
	e := &env{t: f.t, dir: f.dir, name: name, sock: filepath.Join(f.dir, name+"enclave.sock"),
		enclaveExtra: []string{"--host", "unix://" + hostSock, "--sync-interval", fleetSync.String()},
		parentExtra:  append([]string{"--host-listen", "unix://" + hostSock, "--imds", "off"}, f.store.parentArgs()...),
		parentEnv:    f.store.parentEnv(),
	}
	e.launchParent("unix://" + e.sock)
	e.startEnclave(enclaveArgs...)
	e.waitConnected()
	return e
}

// standing is a replica's /readyz.
func (e *env) standing() api.Readiness {
	e.t.Helper()
	resp, err := e.httpClient("broker").Get(e.parent + "/readyz")
	if err != nil {
		return api.Readiness{}
	}
	defer resp.Body.Close()
	var r api.Readiness
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &r)
	return r
}

// converged waits until every replica is ready at epoch, and returns how
// long that took.
func (f *fleet) converged(epoch uint32, replicas ...*env) time.Duration {
	f.t.Helper()
	if replicas == nil {
		replicas = f.replicas
	}
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for _, r := range replicas {
		for {
			st := r.standing()
			if st.Ready && st.Epoch == epoch {
				break
			}
			if time.Now().After(deadline) {
				f.t.Fatalf("%s never reached epoch %d: %+v", r.name, epoch, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// sameKeys fails unless every replica answers the same addresses and KEKs
// for every epoch: one lineage.
func (f *fleet) sameKeys(epochs uint32) {
	f.t.Helper()
	want := f.replicas[0].keyView(f.replicas[0].client("broker"), epochs)
	for _, r := range f.replicas[1:] {
		sameView(f.t, r.name+" against r0-", r.keyView(r.client("broker"), epochs), want)
	}
}

// sequences lists the store.
func (f *fleet) sequences() []uint64 {
	f.t.Helper()
	seqs, _, err := f.store.open(f.t).List(ctx(f.t), 0, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	return seqs
}

// s3Store is one S3 bucket (a prefix of it) the parents share: the store
// the project starts (internal/s3test, SeaweedFS), or the SIGNER_TEST_S3_*
// server.
type s3Store struct{ srv *s3test.Server }

func (s s3Store) parentArgs() []string { return s.srv.ParentFlags() }
func (s s3Store) parentEnv() []string  { return s.srv.Env() }
func (s s3Store) open(t *testing.T) state.Store {
	t.Helper()
	st, err := state.OpenS3(context.Background(), s.srv.URL(), state.S3Options{
		Endpoint: s.srv.Endpoint, Region: s.srv.Region, Credentials: s.srv.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// dirStore is one state directory several parents share: the directory
// store's hard links give one winner per sequence across processes, as
// S3's If-None-Match does across hosts.
type dirStore struct{ dir string }

func (d dirStore) parentArgs() []string { return []string{"--state-dir", d.dir} }
func (d dirStore) parentEnv() []string  { return nil }
func (d dirStore) open(t *testing.T) state.Store {
	s, err := state.Open(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testFleetStore is the store of a fleet test: S3.
func testFleetStore(t *testing.T) fleetStore { return s3Store{srv: s3test.Start(t)} }

// A fleet on one shared directory converges as on S3 (the directory store
// keeps its one-winner guarantee across processes).
func TestFleetOnASharedDirectory(t *testing.T) {
	f := newFleet(t, dirStore{dir: filepath.Join(t.TempDir(), "shared-state")})
	f.add()
	f.add()
	f.converged(1)
	if _, err := f.replicas[1].client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	f.converged(2)
	f.sameKeys(2)
}

// A rotation on one replica reaches the others within the sync interval,
// with no operator: one epoch, the same secret everywhere.
func TestFleetRotationReachesEveryReplica(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	for range 3 {
		f.add()
	}
	f.converged(1)
	if _, err := f.replicas[0].client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	took := f.converged(2)
	f.sameKeys(2)
	if seqs := f.sequences(); len(seqs) != 2 {
		t.Fatalf("the store holds sequences %v, want 2", seqs)
	}
	report(t, fmt.Sprintf("fleet: a rotation on one of 3 replicas reached the others in %s (sync interval %s)", took.Round(time.Millisecond), fleetSync))
}

// Two replicas asked to rotate at the same moment: one wins, the other
// answers state_conflict, and the fleet holds one new epoch.
func TestFleetConcurrentRotationsLeaveOneEpoch(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	for range 3 {
		f.add()
	}
	f.converged(1)
	admins := []*client.Client{f.replicas[0].client("admin"), f.replicas[1].client("admin")}
	for _, a := range admins {
		if _, err := a.Attest(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(admins))
	start := make(chan struct{})
	for i, a := range admins {
		wg.Add(1)
		go func() { defer wg.Done(); <-start; _, errs[i] = a.RotateKeys(ctx(t)) }()
	}
	close(start)
	wg.Wait()
	won, lost := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case api.CodeOf(err) == api.CodeStateConflict:
			lost++
		default:
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("%d rotations won and %d lost, want 1 and 1", won, lost)
	}
	f.converged(2)
	f.sameKeys(2)
	if seqs := f.sequences(); len(seqs) != 2 {
		t.Fatalf("the store holds sequences %v, want 2", seqs)
	}
}

// addBehind starts a replica whose enclave calls h, a hostile parent's
// host service over the fleet's store, instead of its parent's.
func (f *fleet) addBehind(h *lyingHost) *env {
	f.t.Helper()
	name := fmt.Sprintf("r%d-", len(f.replicas))
	e := &env{t: f.t, dir: f.dir, name: name, sock: filepath.Join(f.dir, name+"enclave.sock"),
		enclaveExtra: []string{"--host", h.addr(), "--sync-interval", fleetSync.String()},
		parentExtra:  []string{"--imds", "off"},
	}
	e.launchParent("unix://" + e.sock)
	e.startEnclave("--no-keys")
	e.waitConnected()
	f.replicas = append(f.replicas, e)
	return e
}

// A fourth replica with an empty disk and nothing but the store becomes
// ready on its own, with the fleet's keys.
func TestFleetNewReplicaWithAnEmptyDiskBecomesReady(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	for range 3 {
		f.add()
	}
	f.converged(1)
	if _, err := f.replicas[1].client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	f.converged(2)
	joined := time.Now()
	f.add()
	f.converged(2, f.replicas[3])
	f.sameKeys(2)
	report(t, fmt.Sprintf("fleet: a fourth replica with an empty disk was ready at epoch 2 %s after its start", time.Since(joined).Round(time.Millisecond)))
}

// A parent that hides the newest sequences from its enclave leaves that
// replica behind, never forked: it keeps serving the epochs it holds,
// says it is behind once a caller names a newer epoch (in /readyz and the
// parent's metric), refuses to rotate over the hidden sequence, and
// catches up when the parent stops hiding.
func TestFleetParentHidingTheNewestLeavesItsReplicaBehindNotForked(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	f.add()
	f.add()
	h := startLyingHost(t, filepath.Join(f.dir, "lying-host.sock"))
	h.store = f.store.open(t)
	behind := f.addBehind(h)
	f.converged(1)
	h.mu.Lock()
	h.hide = func(seq uint64) bool { return seq >= 2 }
	h.mu.Unlock()

	if _, err := f.replicas[0].client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	f.converged(2, f.replicas[:2]...)
	// Several intervals later the hidden replica is still at epoch 1 …
	time.Sleep(3 * fleetSync)
	if st := behind.standing(); !st.Ready || st.Epoch != 1 || st.EpochsBehind != 0 {
		t.Fatalf("hidden replica: %+v, want ready at epoch 1", st)
	}
	// … serves it as the fleet does …
	broker := behind.client("broker")
	want := f.replicas[0].keyView(f.replicas[0].client("broker"), 1)
	sameView(t, "the hidden replica's epoch 1", behind.keyView(broker, 1), want)
	// … and, once a caller names epoch 2, says it is behind.
	if _, err := broker.DeriveAddress(ctx(t), omniHex, 2); api.CodeOf(err) != api.CodeUnknownEpoch {
		t.Fatalf("epoch 2 on the hidden replica: %v, want unknown_epoch", err)
	}
	if st := behind.standing(); !st.Ready || st.EpochsBehind != 1 {
		t.Fatalf("after a caller named epoch 2: %+v, want ready and 1 epoch behind", st)
	}
	if v, err := metric(behind.metricsURL(), `signer_enclave_keyring{field="epochs_behind"}`); err != nil || v != 1 {
		t.Fatalf("the parent's metric of epochs behind: %v, %v", v, err)
	}
	// Its rotation would be generation 2 over a hidden generation 2: the
	// store lets the hidden one stand, and the replica adopts nothing it
	// cannot read.
	if _, err := behind.client("admin").RotateKeys(ctx(t)); api.CodeOf(err) != api.CodeStateConflict {
		t.Fatalf("rotation on the hidden replica: %v, want state_conflict", err)
	}
	if seqs := f.sequences(); len(seqs) != 2 {
		t.Fatalf("the store holds sequences %v, want 2: a second lineage was written", seqs)
	}
	h.mu.Lock()
	h.hide = nil
	h.mu.Unlock()
	f.converged(2)
	f.sameKeys(2)
	if st := behind.standing(); st.EpochsBehind != 0 || st.Generation != 2 {
		t.Fatalf("caught up: %+v", st)
	}
}

// fleetClient is a client of role for every replica of the fleet.
func (f *fleet) client(role string) *client.Client {
	f.t.Helper()
	var urls []string
	for _, r := range f.replicas {
		urls = append(urls, r.parent)
	}
	return f.replicas[0].client(role, func(c *client.Config) { c.URL, c.Endpoints = "", urls })
}

// One replica SIGKILLed under load: a client of the fleet carries on with
// zero failed calls, spread over the replicas before and after.
func TestFleetReplicaKilledUnderLoadFailsNoCall(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	for range 3 {
		f.add()
	}
	f.converged(1)
	c := f.client("broker")
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := load(16, func() {
		if _, err := c.DeriveAddress(ctx(t), omniHex, 1); err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		ok.Add(1)
	})
	waitCalls := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for ok.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitCalls(500)
	before := ok.Load()
	f.replicas[1].enclave.kill()
	f.replicas[1].parentP.kill()
	waitCalls(before + 2000)
	stop()
	if e := firstErr.Load(); e != nil {
		t.Fatalf("%d of %d calls failed; the first: %v", failed.Load(), ok.Load()+failed.Load(), *e)
	}
	st := c.Stats()
	for i, r := range st.Replicas {
		if r.Requests == 0 {
			t.Fatalf("replica %d got no request: %+v", i, st)
		}
	}
	if ok.Load() < before+2000 {
		t.Fatalf("only %d calls after the kill", ok.Load()-before)
	}
	report(t, fmt.Sprintf("fleet: a replica SIGKILLed under load (16 callers, 3 replicas): %d calls, 0 failed; %d retries; requests per replica %d/%d/%d",
		ok.Load(), st.Retries, st.Replicas[0].Requests, st.Replicas[1].Requests, st.Replicas[2].Requests))
}

// The signed-ahead bench against a fleet: the load spreads over every
// replica and every answer verifies.
func TestFleetSignedAheadBench(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	for range 3 {
		f.add()
	}
	f.converged(1)
	out := filepath.Join(t.TempDir(), "report.json")
	args := []string{"--dev", f.dir, "--out", out, "--concurrency", "12", "--duration", "3s"}
	for _, r := range f.replicas {
		args = append(args, "--parent", r.parent)
	}
	if b, err := execBench(args...).CombinedOutput(); err != nil {
		t.Fatalf("signer-bench: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		benchReport
		Replicas []struct {
			Endpoint string `json:"endpoint"`
			Requests uint64 `json:"requests"`
		} `json:"replicas"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.OK != r.Requests || len(r.Errors) != 0 || r.SignedAhead < int(r.Requests) {
		t.Fatalf("%d requests, %d ok, %d signed ahead, errors %v", r.Requests, r.OK, r.SignedAhead, r.Errors)
	}
	if len(r.Replicas) != 3 {
		t.Fatalf("the report names %d replicas: %s", len(r.Replicas), b)
	}
	var shares []string
	for _, rep := range r.Replicas {
		if rep.Requests < uint64(r.Requests)/6 {
			t.Fatalf("replica %s got %d of %d requests: not spread", rep.Endpoint, rep.Requests, r.Requests)
		}
		shares = append(shares, fmt.Sprint(rep.Requests))
	}
	report(t, fmt.Sprintf("fleet: signed-ahead bench over 3 replicas: %.0f req/s, %d of %d ok, requests per replica %s",
		r.RPS, r.OK, r.Requests, strings.Join(shares, "/")))
}

// A load balancer's health check reaches /readyz on the parent's plain
// health listener, which presents no client certificate and serves
// nothing else.
func TestFleetHealthListenerForTheLoadBalancer(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	r := f.launch("health-", "--no-keys")
	r.parentP.stop()
	r.launchParent("unix://"+r.sock, "--health-listen", "127.0.0.1:0")
	line := r.parentP.waitLine(t, "parent serving", time.Second)
	var l struct{ Health string }
	if err := json.Unmarshal([]byte(line), &l); err != nil || l.Health == "" {
		t.Fatalf("no health address in %s", line)
	}
	get := func(path string) (int, api.Readiness) {
		t.Helper()
		resp, err := http.Get("http://" + l.Health + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rd api.Readiness
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &rd)
		return resp.StatusCode, rd
	}
	// Nothing imported in this bucket yet: not ready, no traffic.
	deadline := time.Now().Add(10 * time.Second)
	status, rd := get("/readyz")
	for status == 503 && rd.Reason == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		status, rd = get("/readyz")
	}
	if status != 503 || rd.Ready || rd.Reason == "" {
		t.Fatalf("health check before any keyring: %d %+v", status, rd)
	}
	for _, path := range []string{"/metrics", "/v1/attestation?nonce=00", "/v1/derive-address", "/"} {
		if status, _ := get(path); status != 404 && status != 405 {
			t.Fatalf("the health listener answers %s with %d", path, status)
		}
	}
	// Another replica imports: this one takes it from the bucket, and the
	// health check turns healthy.
	f.add()
	deadline = time.Now().Add(20 * time.Second)
	for status, rd = get("/readyz"); status != 200 && time.Now().Before(deadline); status, rd = get("/readyz") {
		time.Sleep(50 * time.Millisecond)
	}
	if status != 200 || !rd.Ready || rd.Epoch != 1 {
		t.Fatalf("health check after the import: %d %+v", status, rd)
	}
}

// A parent that stores a rotation and then answers that the write failed
// (507): the enclave reads the sequence back whatever the parent says, and
// its own bytes there are its change — made, and answered as made, so the
// operator does not rotate twice for one intent.
func TestFleetParentSayingAStoredWriteFailedDoesNotMakeTwoRotations(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	f.add()
	h := startLyingHost(t, filepath.Join(f.dir, "lying-host.sock"))
	h.store = f.store.open(t)
	liar := f.addBehind(h)
	f.converged(1)
	h.answer(hostproto.RouteStatePut, func(call *channel.Call) channel.Reply {
		seq, sealed, err := hostproto.DecodePut(call.Body)
		if err == nil {
			h.store.Put(context.Background(), seq, sealed)
		}
		return channel.Reply{Status: 507, Body: []byte(`{"error":"state_unavailable","message":"disk full"}`)}
	})
	r, err := liar.client("admin").RotateKeys(ctx(t))
	if err != nil || r.Epoch != 2 {
		t.Fatalf("rotation through a parent that says the stored write failed: %+v, %v; want epoch 2 made", r, err)
	}
	if seqs := f.sequences(); len(seqs) != 2 {
		t.Fatalf("the store holds sequences %v, want 2", seqs)
	}
	f.converged(2)
	f.sameKeys(2)
}

// A writer of the bucket piles thousands of sequences above the lineage
// (copies of its oldest sealed keyring). A replica that starts afterwards
// reads the store oldest first from where it stands: it reaches the
// lineage's newest epoch, not the pile's copy of the oldest.
func TestFleetSequencesPiledAboveTheLineageHideNothing(t *testing.T) {
	f := newFleet(t, testFleetStore(t))
	f.add()
	f.converged(1)
	admin := f.replicas[0].client("admin")
	for range 2 {
		if _, err := admin.RotateKeys(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	st := f.store.open(t)
	first, err := st.Get(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(hostproto.MaxSequences + 100) {
		if err := st.Put(context.Background(), 1_000_000+i, first); err != nil {
			t.Fatal(err)
		}
	}
	fresh := f.add()
	f.converged(3, fresh)
	f.sameKeys(3)
	// Until the pile is read (256 a look) nothing changes: something in
	// it could be newer. (The custody test reads it to its end and
	// rotates at sequence 4: TestFleetSequencesPiledAboveTheLineageHideNothing.)
	if st := fresh.standing(); st.Generation != 3 || st.Epoch != 3 {
		t.Fatalf("the fresh replica: %+v, want generation and epoch 3", st)
	}
}

package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// A fleet of fake replicas: one deployment (one attestation root, image
// and caller CA), each replica a parent on its own loopback address with
// its own enclave instance, its own keyring epoch and its own behaviour.

// testClock is time.Now moved on by what a test advances: a backoff or a
// resolution interval passes without waiting for it.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// newFakeFleet starts n replicas of one deployment on 127.0.0.1.
func newFakeFleet(t *testing.T, n int) (*fakeWorld, []*fakeSigner) {
	t.Helper()
	return newFakeFleetOf(t, n, false)
}

// newFakeFleetOf is newFakeFleet, speaking HTTP/2 if http2.
func newFakeFleetOf(t *testing.T, n int, http2 bool) (*fakeWorld, []*fakeSigner) {
	t.Helper()
	w := newFakeWorld(t)
	w.http2 = http2
	var fs []*fakeSigner
	for range n {
		fs = append(fs, w.replica(t, "127.0.0.1:0"))
	}
	return w, fs
}

// endpoints configures a client for the replicas fs, in order.
func endpoints(fs []*fakeSigner) func(*client.Config) {
	return func(c *client.Config) {
		c.Endpoints = nil
		for _, f := range fs {
			c.Endpoints = append(c.Endpoints, f.srv.URL)
		}
	}
}

// total is the calls the replica saw, over every route.
func (f *fakeSigner) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// currentEpoch is the replica's keyring epoch.
func (f *fakeSigner) currentEpoch() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch
}

// replicaStats returns the client's stats of the replica at base URL u.
func replicaStats(t *testing.T, c *client.Client, u string) client.ReplicaStats {
	t.Helper()
	for _, r := range c.Stats().Replicas {
		if r.Endpoint == u {
			return r
		}
	}
	t.Fatalf("no replica %s in %+v", u, c.Stats())
	return client.ReplicaStats{}
}

// TestFleetSpreadsCalls: calls go round the replicas, each replica is
// attested once, and every request is signed for the enclave behind the
// replica it is sent to.
func TestFleetSpreadsCalls(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		w, fs := newFakeFleet(t, 3)
		c := w.newClient(t, endpoints(fs))
		for i := range 30 {
			got, err := deriveAddress(c)
			if err != nil || *got != fakeAddress(fakeOmni, 1) {
				t.Fatalf("call %d: %+v, %v", i, got, err)
			}
		}
		for i, f := range fs {
			attestations, calls, kids := f.seen(api.DeriveAddress.Route)
			if attestations != 1 || calls != 10 {
				t.Errorf("replica %d: %d attestations and %d calls, want 1 and 10", i, attestations, calls)
			}
			for _, kid := range kids {
				if kid != f.kid(0) {
					t.Errorf("replica %d got a request signed for %q, not its enclave %q", i, kid, f.kid(0))
				}
			}
			s := replicaStats(t, c, f.srv.URL)
			if s.Requests != 10 || s.Attestations != 1 || s.Failures != 0 || s.KeyID != f.kid(0) || s.Down || !s.Active {
				t.Errorf("replica %d: stats %+v", i, s)
			}
		}
		if s := c.Stats(); s.Calls != 30 || s.Retries != 0 || s.RetriesDenied != 0 || len(s.Replicas) != 3 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		w, fs := newFakeFleet(t, 3)
		c := w.newClient(t, endpoints(fs))
		const n = 60
		errs := make(chan error, n)
		for range n {
			go func() {
				got, err := deriveAddress(c)
				if err == nil && *got != fakeAddress(fakeOmni, 1) {
					err = fmt.Errorf("answer %+v", got)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		sum := 0
		for _, f := range fs {
			sum += f.total()
		}
		if s := c.Stats(); sum != n || s.Retries != 0 {
			t.Fatalf("%d calls reached the fleet, %d retries; want %d and 0", sum, s.Retries, n)
		}
	})
}

// TestFleetReplicaDownThenProbedBack: with one replica's parent gone, no
// call fails; the replica is tried once, left alone for its backoff, and
// probed again after it, when it serves again.
func TestFleetReplicaDownThenProbedBack(t *testing.T) {
	w, fs := newFakeFleet(t, 3)
	clock := &testClock{}
	var logs bytes.Buffer
	fs[1].stop()
	c := w.newClient(t, endpoints(fs), func(cfg *client.Config) {
		cfg.Clock = clock.now
		cfg.Retry = client.RetryPolicy{MinBackoff: 30 * time.Second, MaxBackoff: time.Minute}
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for i := range 30 {
		if _, err := deriveAddress(c); err != nil {
			t.Fatalf("call %d with a replica down: %v", i, err)
		}
	}
	down := replicaStats(t, c, fs[1].srv.URL)
	if !down.Down || down.Failures != 1 || down.Attestations != 1 || down.Requests != 0 {
		t.Fatalf("the stopped replica: %+v, want down after one failed attestation", down)
	}
	if fs[0].total()+fs[2].total() != 30 || c.Stats().Retries != 1 {
		t.Fatalf("%d calls served by the others, %d retries; want 30 and 1", fs[0].total()+fs[2].total(), c.Stats().Retries)
	}
	if !strings.Contains(logs.String(), "replica down") {
		t.Fatalf("no replica down in the log: %s", logs.String())
	}

	// Back, but within its backoff: left alone.
	fs[1].restartParent()
	for i := range 6 {
		if _, err := deriveAddress(c); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := fs[1].total(); n != 0 {
		t.Fatalf("the replica got %d calls within its backoff", n)
	}
	// The backoff passes: the next calls probe it, and it serves.
	clock.advance(30 * time.Second)
	for i := range 6 {
		if _, err := deriveAddress(c); err != nil {
			t.Fatalf("call %d after the backoff: %v", i, err)
		}
	}
	back := replicaStats(t, c, fs[1].srv.URL)
	if n := fs[1].total(); n != 2 || back.Down || back.Requests != 2 {
		t.Fatalf("after the backoff the replica served %d calls of 6, stats %+v; want 2, up", n, back)
	}
	if !strings.Contains(logs.String(), "replica is back") {
		t.Fatalf("no replica is back in the log: %s", logs.String())
	}
}

// TestFleetFailsOver: a call that fails at a replica — no answer, a 503 of
// its parent or enclave, a document or an answer that is not the attested
// enclave's — is signed again for another replica's enclave and succeeds
// there; the replica is marked down. A hostile replica's answer signed by
// a key no attestation vouches for is never accepted because another
// replica's key is trusted.
func TestFleetFailsOver(t *testing.T) {
	stranger, strangerSigner := newStranger(t)
	signedRefusal := func(code api.Code) func(*instance, []byte, reply) reply {
		return func(in *instance, req []byte, _ reply) reply {
			b, err := in.signer.Sign(req, time.Now(), nil, api.Errorf(code, "refused"))
			if err != nil {
				t.Error(err)
			}
			return reply{code.Status(), "application/jose", b}
		}
	}
	for _, tc := range []struct {
		name   string
		break0 func(f *fakeSigner)
		// want0 are the first replica's requests and refused answers.
		wantRequests0, wantRefused0 uint64
	}{
		{name: "parent_503", wantRequests0: 1, break0: func(f *fakeSigner) {
			f.rewriteCall = func(*instance, []byte, reply) reply {
				return plain(503, api.CodeEnclaveUnavailable, "enclave not connected")
			}
		}},
		{name: "enclave_overloaded_unsigned_503", wantRequests0: 1, break0: func(f *fakeSigner) {
			f.rewriteCall = func(*instance, []byte, reply) reply { return plain(503, api.CodeOverloaded, "too many calls") }
		}},
		{name: "enclave_signer_disabled", wantRequests0: 1, break0: func(f *fakeSigner) {
			f.rewriteCall = signedRefusal(api.CodeSignerDisabled)
		}},
		{name: "connection_dropped", wantRequests0: 1, break0: func(f *fakeSigner) {
			f.rewriteCall = func(*instance, []byte, reply) reply { return reply{status: abort} }
		}},
		{name: "attestation_503", break0: func(f *fakeSigner) {
			f.rewriteAttest = func(reply) reply { return plain(503, api.CodeEnclaveUnavailable, "enclave not connected") }
		}},
		{name: "bad_attestation_of_another_image", break0: func(f *fakeSigner) {
			f.attestation = func(p *issuer.Payload) { p.PCRs = fakePCRs("another image") }
		}},
		{name: "bad_answer_signed_by_an_unattested_key", wantRequests0: 1, wantRefused0: 1, break0: func(f *fakeSigner) {
			f.rewriteCall = func(_ *instance, req []byte, _ reply) reply {
				// Another answer than the honest one, so accepting it shows.
				b, err := strangerSigner.Sign(req, time.Now(), fakeAddress(fakeOmni, 9), nil)
				if err != nil {
					t.Error(err)
				}
				return reply{200, "application/jose", b}
			}
		}},
		{name: "bad_answer_signed_by_another_key_under_the_attested_kid", wantRequests0: 1, wantRefused0: 1, break0: func(f *fakeSigner) {
			f.rewriteCall = func(in *instance, req []byte, _ reply) reply {
				return reply{200, "application/jose", forge(t, stranger, in.kid(),
					fmt.Appendf(nil, `{"req":%q,"iat":%d,"result":{"address":"0x00","public_key":"0x04","k3_epoch":1}}`, reqHash(req), time.Now().Unix()))}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, fs := newFakeFleet(t, 3)
			fs[0].configure(tc.break0)
			c := w.newClient(t, endpoints(fs)) // a fresh client tries the first replica first
			got, err := deriveAddress(c)
			if err != nil || *got != fakeAddress(fakeOmni, 1) {
				t.Fatalf("got %+v, %v; want the honest answer from another replica", got, err)
			}
			first := replicaStats(t, c, fs[0].srv.URL)
			if !first.Down || first.Failures != 1 || first.Requests != tc.wantRequests0 || first.Refused != tc.wantRefused0 {
				t.Fatalf("first replica: %+v", first)
			}
			if _, calls, kids := fs[1].seen(api.DeriveAddress.Route); calls != 1 || kids[0] != fs[1].kid(0) {
				t.Fatalf("second replica: %d calls signed for %q, want 1 for its own enclave %q", calls, kids, fs[1].kid(0))
			}
			if s := c.Stats(); s.Retries != 1 || s.Calls != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
	t.Run("bad_unattested_key_surfaces_without_retries", func(t *testing.T) {
		w, fs := newFakeFleet(t, 2)
		fs[0].configure(func(f *fakeSigner) {
			f.rewriteCall = func(_ *instance, req []byte, _ reply) reply {
				b, _ := strangerSigner.Sign(req, time.Now(), fakeAddress(fakeOmni, 1), nil)
				return reply{200, "application/jose", b}
			}
		})
		// The other replica's key is attested and trusted first.
		c := w.newClient(t, endpoints(fs), func(cfg *client.Config) { cfg.Retry.MaxAttempts = 1 })
		if _, err := c.Attest(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Attest(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := deriveAddress(c)
		var fe *client.FailoverError
		if got != nil || !errors.Is(err, client.ErrResponse) || !errors.Is(err, envelope.ErrUnknownKey) || !errors.As(err, &fe) || fe.Attempts != 1 {
			t.Fatalf("got %+v, %v; want the unattested answer refused", got, err)
		}
		if n := fs[1].total(); n != 0 {
			t.Fatalf("the other replica got %d calls with MaxAttempts 1", n)
		}
	})
	t.Run("relay_to_another_replicas_enclave_is_accepted", func(t *testing.T) {
		// Keys are the trust anchor, replicas only routing: the first
		// replica's parent hands calls to the second replica's enclave.
		// Its refusal (wrong_enclave) and then its answer are signed by
		// its attested key, so they are that enclave's word, whoever
		// relayed them: the client signs again for it and takes the answer.
		w, fs := newFakeFleet(t, 3)
		c := w.newClient(t, endpoints(fs))
		for range 3 { // each replica attested
			if _, err := deriveAddress(c); err != nil {
				t.Fatal(err)
			}
		}
		fs[1].mu.Lock()
		other := fs[1].instances[0]
		fs[1].mu.Unlock()
		fs[0].configure(func(f *fakeSigner) {
			f.instances = append(f.instances, other)
			f.attestTo = func(int) int { return 0 }
			f.callTo = func(string) int { return 1 }
		})
		got, err := deriveAddress(c)
		if err != nil || *got != fakeAddress(fakeOmni, 1) {
			t.Fatalf("relayed: %+v, %v", got, err)
		}
		_, calls, kids := fs[0].seen(api.DeriveAddress.Route)
		if want := []string{fs[0].kid(0), fs[0].kid(0), other.kid()}; calls != 3 || strings.Join(kids, ",") != strings.Join(want, ",") {
			t.Fatalf("first replica: %d calls signed for %q, want %q", calls, kids, want)
		}
		if s := replicaStats(t, c, fs[0].srv.URL); s.Down || s.KeyID != other.kid() || s.Attestations != 1 {
			t.Fatalf("first replica: %+v, want up and signing for the enclave it routes to", s)
		}
	})
}

// TestFleetWrongEnclaveSpendsNoRetryToken: after every replica's enclave
// restarted, each replica's next call is refused wrong_enclave and signed
// again for the new instance at the same replica, spending no retry token:
// the one token of this client is still there for a real failover.
func TestFleetWrongEnclaveSpendsNoRetryToken(t *testing.T) {
	w, fs := newFakeFleet(t, 3)
	c := w.newClient(t, endpoints(fs), func(cfg *client.Config) {
		cfg.Retry = client.RetryPolicy{Burst: 1, Ratio: 1e-9}
	})
	for range 3 {
		if _, err := deriveAddress(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fs {
		f.restart()
	}
	for i := range 3 {
		if _, err := deriveAddress(c); err != nil {
			t.Fatalf("call %d after the restarts: %v", i, err)
		}
	}
	for i, f := range fs {
		_, calls, kids := f.seen(api.DeriveAddress.Route)
		if want := []string{f.kid(0), f.kid(0), f.kid(1)}; calls != 3 || strings.Join(kids, ",") != strings.Join(want, ",") {
			t.Fatalf("replica %d: signed for %q, want %q", i, kids, want)
		}
	}
	if s := c.Stats(); s.Retries != 3 || s.RetriesDenied != 0 {
		t.Fatalf("stats %+v", s)
	}
	fs[0].configure(func(f *fakeSigner) {
		f.rewriteCall = func(*instance, []byte, reply) reply { return plain(503, api.CodeEnclaveUnavailable, "gone") }
	})
	if _, err := deriveAddress(c); err != nil {
		t.Fatalf("failover with the one token: %v", err)
	}
}

// TestFleetRetryBudget: when the fleet fails, retries stop at MaxAttempts,
// at the last untried replica, or when the client's retry tokens are
// spent, and the last attempt's error surfaces in a *FailoverError.
func TestFleetRetryBudget(t *testing.T) {
	unavailable := func(*instance, []byte, reply) reply {
		return plain(503, api.CodeEnclaveUnavailable, "enclave not connected")
	}
	for _, tc := range []struct {
		name     string
		replicas int
		retry    client.RetryPolicy
		// want are the attempts and budget verdict of two calls in a row.
		want        [2]client.FailoverError
		wantDenied  uint64
		wantRetries uint64
	}{
		{name: "bad_budget_spent", replicas: 3, retry: client.RetryPolicy{Burst: 1, Ratio: 1e-9},
			want:       [2]client.FailoverError{{Attempts: 2, BudgetSpent: true}, {Attempts: 1, BudgetSpent: true}},
			wantDenied: 2, wantRetries: 1},
		{name: "bad_max_attempts", replicas: 3, retry: client.RetryPolicy{MaxAttempts: 2},
			want: [2]client.FailoverError{{Attempts: 2}, {Attempts: 2}}, wantRetries: 2},
		{name: "bad_every_replica_tried", replicas: 2, retry: client.RetryPolicy{MaxAttempts: 5},
			want: [2]client.FailoverError{{Attempts: 2}, {Attempts: 2}}, wantRetries: 2},
		{name: "bad_one_replica_never_retried", replicas: 1,
			want: [2]client.FailoverError{{Attempts: 1}, {Attempts: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, fs := newFakeFleet(t, tc.replicas)
			for _, f := range fs {
				f.configure(func(f *fakeSigner) { f.rewriteCall = unavailable })
			}
			c := w.newClient(t, endpoints(fs), func(cfg *client.Config) { cfg.Retry = tc.retry })
			for i, want := range tc.want {
				_, err := deriveAddress(c)
				var fe *client.FailoverError
				var pe *client.ParentError
				if !errors.As(err, &fe) || !errors.As(err, &pe) || pe.Status != 503 {
					t.Fatalf("call %d: %v, want a *FailoverError of a 503", i, err)
				}
				if fe.Attempts != want.Attempts || fe.BudgetSpent != want.BudgetSpent || errors.Is(err, client.ErrRetryBudget) != want.BudgetSpent {
					t.Fatalf("call %d: %+v (%v), want %d attempts, budget spent %v", i, *fe, err, want.Attempts, want.BudgetSpent)
				}
			}
			if s := c.Stats(); s.RetriesDenied != tc.wantDenied || s.Retries != tc.wantRetries {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestFleetChangesStateIsSignedOnce: a rotation is never signed again once
// a signed copy may have left the process — whatever the parent then
// answers, it may have run, and a copy for another replica could run a
// second rotation — but one whose request never got a connection is
// signed for another replica and runs there.
func TestFleetChangesStateIsSignedOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break0 func(f *fakeSigner)
		// transport wraps the client's transport; nil keeps it.
		transport func(http.RoundTripper) http.RoundTripper
		http2     bool
		// rotatedAt is the replica where the rotation ran (-1: none), sent0
		// whether a rotation request reached the first one.
		rotatedAt int
		sent0     bool
		want      error
	}{
		{name: "dial_failure_is_signed_for_another_replica", rotatedAt: 1,
			break0: func(f *fakeSigner) { f.stopAfterAttest = true }},
		{name: "bad_connection_lost_after_sending", rotatedAt: 0, sent0: true, want: client.ErrOutcomeUnknown,
			break0: func(f *fakeSigner) {
				f.rewriteCall = func(*instance, []byte, reply) reply { return reply{status: abort} }
			}},
		{name: "bad_connection_lost_after_sending_http2", http2: true, rotatedAt: 0, sent0: true, want: client.ErrOutcomeUnknown,
			break0: func(f *fakeSigner) {
				f.rewriteCall = func(*instance, []byte, reply) reply { return reply{status: abort} }
			}},
		{name: "bad_parent_503_after_sending", rotatedAt: 0, sent0: true, want: client.ErrOutcomeUnknown,
			break0: func(f *fakeSigner) {
				f.rewriteCall = func(*instance, []byte, reply) reply { return plain(503, api.CodeEnclaveUnavailable, "gone") }
			}},
		{name: "bad_enclave_signer_disabled", rotatedAt: 0, sent0: true, want: &api.Error{Code: api.CodeSignerDisabled},
			break0: func(f *fakeSigner) {
				f.rewriteCall = func(in *instance, req []byte, _ reply) reply {
					b, _ := in.signer.Sign(req, time.Now(), nil, api.Errorf(api.CodeSignerDisabled, "no keys"))
					return reply{503, "application/jose", b}
				}
			}},
		{name: "bad_transport_that_does_not_report_connections", rotatedAt: -1, want: client.ErrOutcomeUnknown,
			// A failure before any connection, from a transport that is
			// not an *http.Transport: the client cannot know it never left.
			transport: func(rt http.RoundTripper) http.RoundTripper { return failPosts{rt} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, fs := newFakeFleetOf(t, 3, tc.http2)
			if tc.break0 != nil {
				fs[0].configure(tc.break0)
			}
			c := w.newClient(t, endpoints(fs), func(cfg *client.Config) {
				if tc.transport != nil {
					cfg.Transport = tc.transport(&http.Transport{TLSClientConfig: &tls.Config{
						MinVersion: tls.VersionTLS13, RootCAs: cfg.ServerCAs, Certificates: []tls.Certificate{cfg.Certificate}}})
				}
			})
			got, err := c.RotateKeys(context.Background())
			switch want := tc.want.(type) {
			case nil:
				if err != nil || got.Epoch != 2 {
					t.Fatalf("rotation: %+v, %v", got, err)
				}
			case *api.Error:
				if api.CodeOf(err) != want.Code || errors.Is(err, client.ErrOutcomeUnknown) {
					t.Fatalf("rotation: %v, want %s", err, want.Code)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("rotation: %v, want %v", err, want)
				}
			}
			sent := 0
			for i, f := range fs {
				_, calls, kids := f.seen(api.RotateKeys.Route)
				sent += calls
				if wantEpoch := uint32(1 + btoi(i == tc.rotatedAt)); f.currentEpoch() != wantEpoch {
					t.Errorf("replica %d at epoch %d, want %d", i, f.currentEpoch(), wantEpoch)
				}
				if calls > 0 && kids[0] != f.kid(0) {
					t.Errorf("replica %d got a rotation signed for %q, not its enclave", i, kids[0])
				}
			}
			fs[0].mu.Lock()
			protos := fs[0].protos
			fs[0].mu.Unlock()
			if want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[tc.http2]; tc.transport == nil && protos[want] == 0 {
				t.Fatalf("the first replica was called over %v, want %s", protos, want)
			}
			wantSent := btoi(tc.sent0) + btoi(tc.rotatedAt > 0)
			if sent != wantSent {
				t.Fatalf("%d rotation requests reached the fleet, want %d", sent, wantSent)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// failPosts is a transport that is not an *http.Transport and fails every
// POST without sending it.
type failPosts struct{ http.RoundTripper }

func (f failPosts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		return nil, errors.New("dial tcp: connection refused")
	}
	return f.RoundTripper.RoundTrip(r)
}

// TestFleetUnknownEpoch: a replica behind the fleet answers unknown_epoch
// for an epoch the others hold; the call is tried on one other replica,
// and an epoch no replica holds costs one retry, not one per replica.
func TestFleetUnknownEpoch(t *testing.T) {
	w, fs := newFakeFleet(t, 3)
	for _, f := range fs[1:] {
		f.configure(func(f *fakeSigner) { f.epoch = 2 })
	}
	c := w.newClient(t, endpoints(fs))
	got, err := c.DeriveAddress(context.Background(), fakeOmni, 2) // the first replica first
	if err != nil || *got != fakeAddress(fakeOmni, 2) {
		t.Fatalf("epoch 2 with the first replica behind: %+v, %v", got, err)
	}
	if s := replicaStats(t, c, fs[0].srv.URL); s.Down || s.Requests != 1 {
		t.Fatalf("the replica behind: %+v, want asked once and not down", s)
	}
	before := c.Stats().Retries
	_, err = c.DeriveAddress(context.Background(), fakeOmni, 9)
	var fe *client.FailoverError
	if api.CodeOf(err) != api.CodeUnknownEpoch || errors.As(err, &fe) {
		t.Fatalf("epoch 9: %v, want the enclave's unknown_epoch as it is", err)
	}
	if n := c.Stats().Retries - before; n != 1 {
		t.Fatalf("an epoch no replica holds cost %d retries, want 1", n)
	}
}

// fleetPolicy pins the world's image.
func fleetPolicy(w *fakeWorld) attestation.Policy {
	return attestation.Policy{Roots: []*x509.Certificate{w.root}, PCRs: map[int][]byte{0: w.pcrs[0], 1: w.pcrs[1], 2: w.pcrs[2]}}
}

// fakeResolver answers LookupHost from a table, counting lookups.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	err     error
	lookups int
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if r.err != nil {
		return nil, r.err
	}
	return r.answers[host], nil
}

func (r *fakeResolver) set(host string, addrs []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[host], r.err = addrs, err
}

func (r *fakeResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups
}

// listenAll listens on one port at each of addrs, retrying with another
// port when one of them is taken.
func listenAll(t *testing.T, addrs []string) []net.Listener {
	t.Helper()
	for range 20 {
		first, err := net.Listen("tcp", addrs[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(first.Addr().(*net.TCPAddr).Port)
		ls := []net.Listener{first}
		for _, a := range addrs[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(a, port))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == len(addrs) {
			return ls
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatal("no port free on every address")
	return nil
}

// TestFleetDNSName: a name with three addresses is three replicas, each
// dialled at its address with the name as the TLS server name and Host;
// the name is resolved again on its interval (an address dropped is
// retired, its counters kept) and soon after a replica fails.
func TestFleetDNSName(t *testing.T) {
	const name = "signer.example.com" // in the httptest certificate
	addrs := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	w := newFakeWorld(t)
	var fs []*fakeSigner
	for _, l := range listenAll(t, addrs) {
		f := w.replica(t, "127.0.0.1:0")
		f.stop()
		f.start(l)
		fs = append(fs, f)
	}
	_, port, _ := net.SplitHostPort(fs[0].addr)
	resolver := &fakeResolver{answers: map[string][]string{name: {"127.0.0.3", "127.0.0.1", "not an address", "127.0.0.2", "127.0.0.1"}}}
	clock := &testClock{}
	endpoint := "https://" + net.JoinHostPort(name, port)
	c := w.newClient(t, func(cfg *client.Config) {
		cfg.Endpoints, cfg.Resolver, cfg.Clock = []string{endpoint}, resolver, clock.now
		// Short enough that the advances stay within the enclave's
		// replay window.
		cfg.ResolveInterval = 10 * time.Second
		cfg.Retry = client.RetryPolicy{MinBackoff: 30 * time.Second, MaxBackoff: time.Minute}
	})
	for i := range 9 {
		if _, err := deriveAddress(c); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	s := c.Stats()
	if len(s.Replicas) != 3 || resolver.count() != 1 {
		t.Fatalf("%d replicas after %d lookups, want 3 after 1: %+v", len(s.Replicas), resolver.count(), s)
	}
	for i, f := range fs {
		if s.Replicas[i].Address != addrs[i] || s.Replicas[i].Endpoint != endpoint || s.Replicas[i].Requests != 3 {
			t.Errorf("replica %d: %+v", i, s.Replicas[i])
		}
		if n := f.total(); n != 3 {
			t.Errorf("%s served %d calls, want 3", addrs[i], n)
		}
		f.mu.Lock()
		for _, got := range f.served {
			if want := name + " " + net.JoinHostPort(name, port); got != want {
				t.Errorf("%s: server name and host %q, want %q", addrs[i], got, want)
			}
		}
		f.mu.Unlock()
	}

	t.Run("resolved_again_on_its_interval", func(t *testing.T) {
		resolver.set(name, []string{"127.0.0.1", "127.0.0.2"}, nil)
		clock.advance(10 * time.Second)
		for i := range 6 {
			if _, err := deriveAddress(c); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		s := c.Stats()
		if resolver.count() != 2 || len(s.Replicas) != 3 || s.Replicas[2].Address != "127.0.0.3" || s.Replicas[2].Active {
			t.Fatalf("after the second lookup: %+v", s)
		}
		if fs[2].total() != 3 || fs[0].total()+fs[1].total() != 12 {
			t.Fatalf("calls %d, %d, %d: the dropped address still called", fs[0].total(), fs[1].total(), fs[2].total())
		}
	})
	t.Run("resolved_again_soon_after_a_failure", func(t *testing.T) {
		fs[1].stop()
		for i := range 2 {
			if _, err := deriveAddress(c); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if s := replicaStats(t, c, endpoint); !c.Stats().Replicas[1].Down {
			t.Fatalf("127.0.0.2 not down: %+v", s)
		}
		before := resolver.count()
		clock.advance(time.Second)
		if _, err := deriveAddress(c); err != nil {
			t.Fatal(err)
		}
		if resolver.count() != before+1 {
			t.Fatalf("%d lookups after a failure, want %d", resolver.count(), before+1)
		}
	})
	t.Run("failed_resolution_keeps_the_last_answer", func(t *testing.T) {
		resolver.set(name, nil, errors.New("SERVFAIL"))
		clock.advance(10 * time.Second)
		if _, err := deriveAddress(c); err != nil {
			t.Fatalf("with the resolver failing: %v", err)
		}
		if s := c.Stats(); !s.Replicas[0].Active {
			t.Fatalf("the last answer dropped: %+v", s)
		}
	})
}

// TestEndpointErrors: a name that never resolves, or resolves to nothing
// usable, is ErrNoReplica with the reason; bad endpoints and retry
// policies are refused by New.
func TestEndpointErrors(t *testing.T) {
	w, fs := newFakeFleet(t, 1)
	for _, tc := range []struct {
		name   string
		answer []string
		err    error
	}{
		{name: "bad_resolver_fails", err: errors.New("SERVFAIL")},
		{name: "bad_no_address"},
		{name: "bad_answer_not_addresses", answer: []string{"example.com", "300.1.1.1", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resolver := &fakeResolver{answers: map[string][]string{"signer.example.com": tc.answer}, err: tc.err}
			c := w.newClient(t, func(cfg *client.Config) {
				cfg.Endpoints, cfg.Resolver = []string{"https://signer.example.com:1"}, resolver
			})
			if _, err := deriveAddress(c); !errors.Is(err, client.ErrNoReplica) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("call: %v, want client.ErrNoReplica", err)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		mutate func(*client.Config)
		want   string
	}{
		{"bad_no_endpoint", func(c *client.Config) { c.URL, c.Endpoints = "", nil }, "URL or Endpoints is required"},
		{"bad_http", func(c *client.Config) { c.Endpoints = []string{"http://127.0.0.1:8443"} }, "want https://"},
		{"bad_no_host", func(c *client.Config) { c.Endpoints = []string{"https://"} }, "want https://"},
		{"bad_empty_host", func(c *client.Config) { c.Endpoints = []string{"https://:8443"} }, "want https://"},
		{"bad_port", func(c *client.Config) { c.Endpoints = []string{"https://127.0.0.1:70000"} }, "want https://"},
		{"bad_query", func(c *client.Config) { c.Endpoints = []string{"https://127.0.0.1:8443/?a=b"} }, "want https://"},
		{"bad_user", func(c *client.Config) { c.Endpoints = []string{"https://u:p@127.0.0.1:8443"} }, "want https://"},
		{"bad_fragment", func(c *client.Config) { c.Endpoints = []string{"https://127.0.0.1:8443#x"} }, "want https://"},
		{"bad_not_a_url", func(c *client.Config) { c.Endpoints = []string{"127.0.0.1:8443"} }, "want https://"},
		{"bad_too_many", func(c *client.Config) {
			c.Endpoints = nil
			for i := range 100 {
				c.Endpoints = append(c.Endpoints, fmt.Sprintf("https://127.0.0.1:%d", 1000+i))
			}
		}, "at most"},
		{"bad_negative_attempts", func(c *client.Config) { c.Retry.MaxAttempts = -1 }, "must not be negative"},
		{"bad_negative_ratio", func(c *client.Config) { c.Retry.Ratio = -0.1 }, "must not be negative"},
		{"bad_backoffs_crossed", func(c *client.Config) { c.Retry.MinBackoff, c.Retry.MaxBackoff = time.Minute, time.Second }, "below MinBackoff"},
		{"bad_negative_interval", func(c *client.Config) { c.ResolveInterval = -time.Second }, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := client.Config{URL: fs[0].srv.URL, Certificate: w.caller, SignerID: fakeSignerID, Clock: time.Now,
				Policy: fleetPolicy(w)}
			tc.mutate(&cfg)
			if _, err := client.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("url_and_endpoints_together_repeats_dropped", func(t *testing.T) {
		c := w.newClient(t, func(cfg *client.Config) {
			cfg.URL, cfg.Endpoints = fs[0].srv.URL, []string{fs[0].srv.URL + "/", fs[0].srv.URL}
		})
		if n := len(c.Stats().Replicas); n != 1 {
			t.Fatalf("%d replicas for one endpoint given three times", n)
		}
	})
}

// TestFleetSignedAhead: Prepare spreads over the replicas, signing each
// request for the enclave of the replica it picked; Send posts each
// there, and Open verifies every answer.
func TestFleetSignedAhead(t *testing.T) {
	w, fs := newFakeFleet(t, 3)
	c := w.newClient(t, endpoints(fs))
	ctx := context.Background()
	var reqs []*client.Request
	for range 9 {
		r, err := c.Prepare(ctx, api.DeriveAddress.Route, api.DeriveAddressRequest{OperatorOmni: fakeOmni})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	var answers []*client.Answer
	for _, r := range reqs {
		a, err := c.Send(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, a)
	}
	for i, r := range reqs {
		var got api.DeriveAddressResponse
		if err := c.Open(ctx, r, answers[i], &got); err != nil || got != fakeAddress(fakeOmni, 1) {
			t.Fatalf("answer %d: %+v, %v", i, got, err)
		}
	}
	for i, f := range fs {
		attestations, calls, kids := f.seen(api.DeriveAddress.Route)
		if attestations != 1 || calls != 3 {
			t.Errorf("replica %d: %d attestations, %d requests; want 1 and 3", i, attestations, calls)
		}
		for _, kid := range kids {
			if kid != f.kid(0) {
				t.Errorf("replica %d got a request signed for %q", i, kid)
			}
		}
	}
	t.Run("bad_send_to_a_replica_gone", func(t *testing.T) {
		r, err := c.Prepare(ctx, api.DeriveAddress.Route, api.DeriveAddressRequest{OperatorOmni: fakeOmni})
		if err != nil {
			t.Fatal(err)
		}
		// The request is bound to the replica Prepare picked: Send does
		// not fail over, and marks it down so the next Prepare picks
		// another.
		for _, f := range fs {
			f.stop()
		}
		if _, err := c.Send(ctx, r); err == nil {
			t.Fatal("sent to a stopped replica")
		}
		var down []client.ReplicaStats
		for _, s := range c.Stats().Replicas {
			if s.Down {
				down = append(down, s)
			}
		}
		if len(down) != 1 || down[0].Requests != 4 || down[0].Failures != 1 {
			t.Fatalf("replicas down after one failed Send: %+v, want the one it was sent to", down)
		}
	})
}

// TestFleetCopyKeyringIsOneSessionPerSide: the four calls of a peer copy
// are made at one replica of each side, the sender's challenge and export
// at one, the receiver's offer and import at one.
func TestFleetCopyKeyringIsOneSessionPerSide(t *testing.T) {
	w, fs := newFakeFleet(t, 4)
	from := w.newClient(t, endpoints(fs[:2]))
	to := w.newClient(t, endpoints(fs[2:]))
	// Move both round robins on, so a spreading client would change
	// replica between the calls.
	if _, err := from.Attest(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CopyKeyring(context.Background(), from, to); err != nil {
		t.Fatal(err)
	}
	routes := func(f *fakeSigner) string {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []string
		for _, r := range []string{api.PeerChallenge.Route, api.PeerExport.Route, api.PeerOffer.Route, api.PeerImport.Route} {
			if f.calls[r] > 0 {
				out = append(out, fmt.Sprintf("%s=%d", r, f.calls[r]))
			}
		}
		return strings.Join(out, " ")
	}
	got := []string{routes(fs[0]), routes(fs[1]), routes(fs[2]), routes(fs[3])}
	sender := "v1/keys/peer-challenge=1 v1/keys/peer-export=1"
	receiver := "v1/keys/peer-request=1 v1/keys/peer-import=1"
	if !(got[0] == sender && got[1] == "" || got[0] == "" && got[1] == sender) ||
		!(got[2] == receiver && got[3] == "" || got[2] == "" && got[3] == receiver) {
		t.Fatalf("calls per replica %q: want the sender's at one replica, the receiver's at one", got)
	}
}

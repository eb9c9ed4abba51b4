package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
	"github.com/nitro-signer/nitro-signer/parent/state"
)

// lyingHost is the parent's host service (what parent/hostsvc answers to
// enclave/host: the state store and the instance credentials) as a hostile
// parent runs it, on the real channel protocol. By default it answers
// honestly from memory: a state store of sequences and, once set, fixed
// credentials. Per route, a test makes it answer whatever it likes.
//
// Start an enclave against it with newLyingHostEnv (or pass
// "--host", h.addr() to any enclave start); the real parent still serves
// the callers and, when asked, the egress.
type lyingHost struct {
	t    *testing.T
	sock string

	mu    sync.Mutex
	blobs map[uint64][]byte
	// store, when set, holds the sequences instead of blobs: a real store
	// the fleet shares, seen through this parent. hide, when set, hides
	// the sequences it names from list and get.
	store     state.Store
	hide      func(seq uint64) bool
	creds     *hostproto.Credentials
	overrides map[string]func(call *channel.Call) channel.Reply
	calls     map[string]int
}

// startLyingHost serves on a Unix socket at sock until the test ends.
func startLyingHost(t *testing.T, sock string) *lyingHost {
	t.Helper()
	os.Remove(sock)
	addr, err := channel.ParseAddr("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &lyingHost{t: t, sock: sock, blobs: map[uint64][]byte{},
		overrides: map[string]func(*channel.Call) channel.Reply{}, calls: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&channel.Server{Handler: h}).Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	return h
}

// addr is the host address to start an enclave with.
func (h *lyingHost) addr() string { return "unix://" + h.sock }

// answer makes route answer with f instead of honestly; nil restores the
// honest answer. f runs on the channel's workers, without h's lock.
func (h *lyingHost) answer(route string, f func(call *channel.Call) channel.Reply) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f == nil {
		delete(h.overrides, route)
		return
	}
	h.overrides[route] = f
}

// lie makes route answer status with body, whatever is asked.
func (h *lyingHost) lie(route string, status int, body string) {
	h.answer(route, func(*channel.Call) channel.Reply { return channel.Reply{Status: status, Body: []byte(body)} })
}

// put stores b as the given sequence, as if the enclave had.
func (h *lyingHost) put(seq uint64, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.blobs[seq] = slices.Clone(b)
}

// setCredentials makes aws/credentials answer c.
func (h *lyingHost) setCredentials(c *hostproto.Credentials) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.creds = c
}

// callsTo counts the calls route received.
func (h *lyingHost) callsTo(route string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[route]
}

// Handle answers one call from the enclave.
func (h *lyingHost) Handle(_ context.Context, call *channel.Call) channel.Reply {
	h.mu.Lock()
	h.calls[call.Route]++
	if f := h.overrides[call.Route]; f != nil {
		h.mu.Unlock()
		return f(call)
	}
	defer h.mu.Unlock()
	reply := func(status int, v any) channel.Reply {
		b, _ := json.Marshal(v)
		return channel.Reply{Status: status, Body: b}
	}
	switch call.Route {
	case hostproto.RouteStateList:
		var req hostproto.ListRequest
		if len(call.Body) > 0 && json.Unmarshal(call.Body, &req) != nil {
			return reply(400, map[string]string{"error": "bad state/list"})
		}
		var seqs []uint64
		more := false
		if h.store != nil {
			var err error
			if seqs, more, err = h.store.List(context.Background(), req.After, hostproto.MaxSequences); err != nil {
				return reply(500, map[string]string{"error": "list failed"})
			}
		} else {
			for seq := range h.blobs {
				if seq > req.After {
					seqs = append(seqs, seq)
				}
			}
			slices.Sort(seqs)
			if len(seqs) > hostproto.MaxSequences {
				seqs, more = seqs[:hostproto.MaxSequences], true
			}
		}
		seqs = slices.DeleteFunc(seqs, func(seq uint64) bool { return h.hide != nil && h.hide(seq) })
		return reply(200, hostproto.SequenceList{Sequences: append([]uint64{}, seqs...), More: more})
	case hostproto.RouteStateGet:
		var ref hostproto.SequenceRef
		if err := json.Unmarshal(call.Body, &ref); err != nil {
			return reply(400, map[string]string{"error": "bad state/get"})
		}
		b, ok := h.blobs[ref.Seq]
		if h.store != nil {
			var err error
			b, err = h.store.Get(context.Background(), ref.Seq)
			ok = err == nil
		}
		if !ok || (h.hide != nil && h.hide(ref.Seq)) {
			return reply(404, map[string]string{"error": "no such sequence"})
		}
		return channel.Reply{Status: 200, Body: slices.Clone(b)}
	case hostproto.RouteStatePut:
		seq, sealed, err := hostproto.DecodePut(call.Body)
		if err != nil {
			return reply(400, map[string]string{"error": "bad state/put"})
		}
		if h.store != nil {
			err = h.store.Put(context.Background(), seq, sealed)
		} else if _, taken := h.blobs[seq]; taken {
			err = state.ErrExists
		} else {
			h.blobs[seq] = slices.Clone(sealed)
		}
		switch {
		case errors.Is(err, state.ErrExists):
			return reply(hostproto.StatusExists, map[string]string{"error": "state_conflict"})
		case err != nil:
			return reply(507, map[string]string{"error": "put failed"})
		}
		return reply(200, hostproto.SequenceRef{Seq: seq})
	case hostproto.RouteCredentials:
		if h.creds == nil {
			return reply(503, map[string]string{"error": "no credentials"})
		}
		b, err := hostproto.EncodeCredentials(h.creds)
		if err != nil {
			return reply(500, map[string]string{"error": "credentials do not encode"})
		}
		return channel.Reply{Status: 200, Body: b}
	}
	return reply(404, map[string]string{"error": "no such route"})
}

var _ channel.Handler = (*lyingHost)(nil)

// newLyingHostEnv starts a stack whose enclave calls h for its state and
// credentials; the real parent serves the callers (and whatever
// parentArgs add, the egress say). Stacks sharing dir share the PKI and
// the simulator's root and sealing key, as in newSealedEnv.
func newLyingHostEnv(t *testing.T, dir, name string, h *lyingHost, parentArgs, enclaveArgs []string) *env {
	t.Helper()
	return newHostEnv(t, dir, name, h.addr(), parentArgs, enclaveArgs)
}

// newHostEnv is newLyingHostEnv with the enclave's host service at
// hostAddr, whatever serves it.
func newHostEnv(t *testing.T, dir, name, hostAddr string, parentArgs, enclaveArgs []string) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, "nsm")); errors.Is(err, os.ErrNotExist) {
		writeDevConfig(t, dir)
		if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, dir: dir, name: name, sock: filepath.Join(dir, name+"enclave.sock"),
		enclaveExtra: []string{"--host", hostAddr}, parentExtra: parentArgs}
	e.launchParent("unix://" + e.sock)
	e.startEnclave(enclaveArgs...)
	e.waitConnected()
	return e
}

// hostLie is what a hostile parent would have an operator read in an answer
// the enclave signed.
const hostLie = "visit https://evil.example/recover"

// fakeKMSSealer seals with a random data key under a random "wrapped" blob:
// a file with a well-formed kms header that only KMS could open.
type fakeKMSSealer struct{}

func (fakeKMSSealer) Kind() string { return "kms" }
func (fakeKMSSealer) NewDataKey(context.Context, string) ([]byte, []byte, error) {
	key, wrapped := make([]byte, seal.DataKeySize), make([]byte, 64)
	rand.Read(key)
	rand.Read(wrapped)
	return key, wrapped, nil
}
func (fakeKMSSealer) Unwrap(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("not this sealer")
}

func kmsSealedBlob(t *testing.T) []byte {
	t.Helper()
	s, _ := keyring.NewSecret(make([]byte, 32))
	b, err := seal.Seal(context.Background(), fakeKMSSealer{}, devpki.SignerID, &seal.Keyring{Generation: 1, Epochs: []*keyring.Secret{s}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// useLocalKMS points dir's enclave configuration at a local KMS, and
// returns the parent flags of an egress that reaches it and the
// credentials KMS takes.
func useLocalKMS(t *testing.T, dir string) ([]string, *hostproto.Credentials) {
	t.Helper()
	const keyARN = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	creds := hostproto.NewCredentials("ASIAE2ELYINGHOST0001", "lying-host-secret-access-key-0123456789",
		"lying-host-session-token", time.Now().Add(time.Hour))
	kms, err := kmstest.Start(kmstest.Policy{KeyID: keyARN, Region: "us-east-1", PCRs: map[int][]byte{},
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey(), SessionToken: creds.SessionToken()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kms.Close)
	editConfig(t, filepath.Join(dir, "pki", devpki.EnclaveJSON), func(cfg map[string]any) { cfg["sealing"] = kmsSealing(kms, keyARN) })
	egress := filepath.Join(dir, "egress.sock")
	return []string{"--egress-listen", "unix://" + egress, "--egress-allow", kms.HostPort(), "--imds", "off"}, creds
}

// TestHostRepliesAreNotQuotedInSignedAnswers: whatever text the parent's
// host service puts in a failed reply, no answer the enclave signs and no
// readiness report repeats it; they name the route and the status, so an
// operator still learns which call failed. Each case has its host service
// fail one route with a body that tells the operator where to "recover".
func TestHostRepliesAreNotQuotedInSignedAnswers(t *testing.T) {
	body := hostLie // a lying host need not even answer JSON
	dir := t.TempDir()
	writeDevConfig(t, dir)
	os.MkdirAll(filepath.Join(dir, "nsm"), 0o700)

	// clean checks one text the enclave produced: not six bytes in a row
	// of the lie (a truncated quote is still a quote), and the route and
	// status that failed.
	clean := func(t *testing.T, what, text string, route string, status string) {
		t.Helper()
		for i := 0; i+6 <= len(hostLie); i++ {
			if strings.Contains(text, hostLie[i:i+6]) {
				t.Errorf("%s quotes the parent's reply (%q): %q", what, hostLie[i:i+6], text)
				break
			}
		}
		if !strings.Contains(text, route) || !strings.Contains(text, status) {
			t.Errorf("%s does not name %s and status %s: %q", what, route, status, text)
		}
	}
	// unsealReported checks readiness and the signed keys/status while
	// unsealing fails on route.
	unsealReported := func(t *testing.T, e *env, route, status string) {
		t.Helper()
		_, reason := e.readiness(func(ready bool, reason string) bool {
			return !ready && strings.Contains(reason, "unsealing failed")
		}, 20*time.Second)
		clean(t, "/readyz", reason, route, status)
		t.Logf("readiness: %s", reason)
		st, err := e.client("admin").KeyStatus(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		clean(t, "keys/status (signed)", st.Reason, route, status)
	}
	// importReported checks the signed refusal of an import whose sealing
	// or storing fails on route.
	importReported := func(t *testing.T, e *env, route, status string) {
		t.Helper()
		_, err := e.client("admin").ImportSecret(ctx(t), make([]byte, 32))
		var ee *api.Error
		if !errors.As(err, &ee) || ee.Code != api.CodeStateUnavailable {
			t.Fatalf("import with %s failing: %v", route, err)
		}
		clean(t, "the import's refusal (signed)", ee.Message, route, status)
		t.Logf("import refused: %s", ee.Message)
	}

	t.Run("bad_state_list_body", func(t *testing.T) {
		h := startLyingHost(t, filepath.Join(dir, "list-host.sock"))
		h.lie(hostproto.RouteStateList, 500, body)
		e := newLyingHostEnv(t, dir, "list-", h, nil, []string{"--no-keys"})
		unsealReported(t, e, hostproto.RouteStateList, "500")
	})
	t.Run("bad_state_get_body", func(t *testing.T) {
		h := startLyingHost(t, filepath.Join(dir, "get-host.sock"))
		h.put(1, []byte("a sealed keyring"))
		h.lie(hostproto.RouteStateGet, 500, body)
		e := newLyingHostEnv(t, dir, "get-", h, nil, []string{"--no-keys"})
		unsealReported(t, e, hostproto.RouteStateGet, "500")
	})
	t.Run("bad_state_put_body", func(t *testing.T) {
		h := startLyingHost(t, filepath.Join(dir, "put-host.sock"))
		h.lie(hostproto.RouteStatePut, 507, body)
		e := newLyingHostEnv(t, dir, "put-", h, nil, []string{"--no-keys"})
		importReported(t, e, hostproto.RouteStatePut, "507")
		if h.callsTo(hostproto.RouteStatePut) == 0 {
			t.Fatal("the import never reached state/put")
		}
	})
	t.Run("bad_credentials_body", func(t *testing.T) {
		kdir := t.TempDir()
		writeDevConfig(t, kdir)
		os.MkdirAll(filepath.Join(kdir, "nsm"), 0o700)
		parentArgs, creds := useLocalKMS(t, kdir)
		h := startLyingHost(t, filepath.Join(kdir, "host.sock"))
		h.lie(hostproto.RouteCredentials, 503, body)
		e := newLyingHostEnv(t, kdir, "", h, parentArgs, []string{"--no-keys", "--egress", "unix://" + filepath.Join(kdir, "egress.sock")})
		// Sealing an import asks for credentials first.
		importReported(t, e, hostproto.RouteCredentials, "503")
		// Unsealing a stored keyring does too.
		h.put(1, kmsSealedBlob(t))
		e.enclave.kill()
		e.startEnclave("--no-keys", "--egress", "unix://"+filepath.Join(kdir, "egress.sock"))
		unsealReported(t, e, hostproto.RouteCredentials, "503")
		if h.callsTo(hostproto.RouteCredentials) == 0 {
			t.Fatal("the enclave never asked for credentials")
		}
		// With credentials KMS takes, KMS itself refuses (this local KMS
		// does not trust the simulator's root): readiness gives KMS's
		// error code, not its message.
		h.answer(hostproto.RouteCredentials, nil)
		h.setCredentials(creds)
		e.enclave.kill()
		e.startEnclave("--no-keys", "--egress", "unix://"+filepath.Join(kdir, "egress.sock"))
		_, reason := e.readiness(func(ready bool, reason string) bool {
			return !ready && strings.Contains(reason, "KMS answered")
		}, 20*time.Second)
		if strings.Contains(reason, "attestation document") || strings.Contains(reason, "503") {
			t.Fatalf("readiness with KMS refusing: %q", reason)
		}
		t.Logf("readiness: %s", reason)
	})
}

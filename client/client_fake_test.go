package client_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// The fake signer: a parent and its enclave instances in process, speaking
// the real wire. GET /v1/attestation answers a document in the NSM's format
// (attestation/issuer, under a development root the client is given), and a
// call is verified as the enclave verifies it (envelope.Verifier, holding
// the request to the instance's kid) and answered by envelope.ResponseSigner
// with the instance's per-boot key. Tests choose which instance answers
// each attestation and each call, and may rewrite any answer on its way
// out, as a parent could.

const (
	fakeSignerID = "signer-fake"
	fakeOmni     = "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"
	fakeWindow   = time.Minute
)

// fakeConfig is the configuration hash the fake's instances attest.
var fakeConfig = sha256.Sum256([]byte("fake enclave configuration"))

// instance is one enclave boot: its response key and request verifier.
type instance struct {
	key      *ecdsa.PrivateKey
	signer   *envelope.ResponseSigner
	verifier *envelope.Verifier
	x25519   []byte
}

func (in *instance) kid() string { return in.signer.KeyID() }

// reply is an HTTP answer.
type reply struct {
	status int
	ctype  string
	body   []byte
}

type fakeSigner struct {
	t        *testing.T
	srv      *httptest.Server
	addr     string
	http2    bool
	issuer   *issuer.Issuer
	root     *x509.Certificate
	pcrs     map[int][]byte
	callerCA *x509.CertPool
	caller   tls.Certificate

	mu        sync.Mutex
	instances []*instance
	// attestTo picks the instance the nth attestation (from 0) reaches;
	// nil means the newest.
	attestTo func(n int) int
	// callTo picks the instance a call signed for kid reaches; nil means
	// the newest.
	callTo func(kid string) int
	// attestation rewrites a document's payload before it is signed.
	attestation func(p *issuer.Payload)
	// rewriteAttest and rewriteCall rewrite answers on their way out; a
	// reply with status abort drops the connection instead.
	rewriteAttest func(honest reply) reply
	rewriteCall   func(in *instance, req []byte, honest reply) reply
	// stopAfterAttest: after answering the next attestation, close the
	// connection and stop listening, so the next request's dial fails.
	stopAfterAttest bool
	// served records the TLS server name and Host of every request,
	// protos its protocol.
	served []string
	protos map[string]int
	// What the fake saw: attestations served, calls per route, and the
	// kid each call was signed for.
	attestations int
	calls        map[string]int
	signedFor    []string
	epoch        uint32
	// oidc is the fake's OIDC issuer (oidc_test.go), made on first use.
	oidc *fakeOIDC
	// stsTamper changes v1/sts-credentials' answer (sts_test.go).
	stsTamper func(a *fakeSTSAnswer)
}

// fakeWorld is what the replicas of one deployment share: the
// attestation root and issuer, the image, the caller CA and the caller.
type fakeWorld struct {
	issuer   *issuer.Issuer
	root     *x509.Certificate
	pcrs     map[int][]byte
	callerCA *x509.CertPool
	caller   tls.Certificate
	// http2: the parents speak HTTP/2 (default HTTP/1.1 only).
	http2 bool
	// server is the parents' TLS certificate (httptest's, the same for
	// every server: 127.0.0.1, ::1, example.com and *.example.com).
	server *x509.Certificate
}

func newFakeWorld(t *testing.T) *fakeWorld {
	t.Helper()
	now := time.Now()
	authority, err := issuer.NewAuthority(now)
	if err != nil {
		t.Fatal(err)
	}
	// The leaf is an hour old, so a stale document is still within it.
	is, err := authority.NewIssuer(now, issuer.Options{LeafNotBefore: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey, err := devpki.NewCA("fake caller CA", now)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.Parse("spiffe://" + devpki.TrustDomain + "/broker")
	leaf, leafKey, err := devpki.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "broker"}, URIs: []*url.URL{id},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey, now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &fakeWorld{issuer: is, root: authority.Root, pcrs: fakePCRs("fake enclave image"), callerCA: pool,
		caller: tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey}}
}

// newFakeSigner is a deployment of one replica.
func newFakeSigner(t *testing.T) *fakeSigner { return newFakeWorld(t).replica(t, "127.0.0.1:0") }

// replica starts a replica of the world, a parent listening on addr with
// one enclave instance behind it.
func (w *fakeWorld) replica(t *testing.T, addr string) *fakeSigner {
	t.Helper()
	f := &fakeSigner{
		t: t, issuer: w.issuer, root: w.root, pcrs: w.pcrs, callerCA: w.callerCA, caller: w.caller,
		calls: map[string]int{}, epoch: 1, http2: w.http2,
	}
	f.restart()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f.start(l)
	t.Cleanup(func() { f.stop() })
	w.server = f.srv.Certificate()
	return f
}

// start serves on l.
func (f *fakeSigner) start(l net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Listener = l
	srv.EnableHTTP2 = f.http2
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: f.callerCA}
	srv.StartTLS()
	f.mu.Lock()
	f.srv, f.addr = srv, l.Addr().String()
	f.mu.Unlock()
}

// stop stops the parent: connections to it are refused.
func (f *fakeSigner) stop() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Close()
}

// restartParent starts the parent again at its address.
func (f *fakeSigner) restartParent() {
	f.t.Helper()
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.start(l)
}

// fakePCRs are the PCRs of an image: PCR0..2 from its name, the rest zero.
func fakePCRs(image string) map[int][]byte {
	pcrs := map[int][]byte{}
	for i := range 16 {
		pcrs[i] = make([]byte, sha512.Size384)
	}
	for i := range 3 {
		sum := sha512.Sum384(fmt.Appendf(nil, "%s PCR%d", image, i))
		pcrs[i] = sum[:]
	}
	return pcrs
}

// restart boots a new instance with a new key and returns its index; the
// older ones keep running (other replicas, or a boot still draining).
func (f *fakeSigner) restart() int {
	f.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	signer, err := envelope.NewResponseSigner(key)
	if err != nil {
		f.t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	in := &instance{key: key, signer: signer, x25519: x.PublicKey().Bytes(), verifier: &envelope.Verifier{
		SignerID: fakeSignerID, CallerCA: f.callerCA, TrustDomain: devpki.TrustDomain, Window: fakeWindow,
		Clock: time.Now, Instance: signer.KeyID(), Replay: envelope.NewReplay(fakeWindow, 1024, 0, 0, time.Now()),
	}}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances = append(f.instances, in)
	return len(f.instances) - 1
}

// configure changes the fake's behaviour under its lock: the server's
// goroutines read it there.
func (f *fakeSigner) configure(change func(f *fakeSigner)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// seen returns the attestations served, the calls of route and the kids
// the calls were signed for.
func (f *fakeSigner) seen(route string) (attestations, calls int, signedFor []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attestations, f.calls[route], append([]string(nil), f.signedFor...)
}

func (f *fakeSigner) kid(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.instances[i].kid()
}

func (f *fakeSigner) newClient(t *testing.T) *client.Client {
	t.Helper()
	w := &fakeWorld{root: f.root, pcrs: f.pcrs, caller: f.caller, server: f.srv.Certificate()}
	return w.newClient(t, func(c *client.Config) { c.URL = f.srv.URL })
}

// newClient returns a client of the world's deployment, configured
// further by mutate (which sets its endpoints).
func (w *fakeWorld) newClient(t *testing.T, mutate ...func(*client.Config)) *client.Client {
	t.Helper()
	servers := x509.NewCertPool()
	servers.AddCert(w.server)
	cfg := client.Config{
		Certificate: w.caller, ServerCAs: servers, SignerID: fakeSignerID, ConfigSHA256: fakeConfig[:],
		Policy: attestation.Policy{Roots: []*x509.Certificate{w.root}, PCRs: map[int][]byte{0: w.pcrs[0], 1: w.pcrs[1], 2: w.pcrs[2]}},
		Clock:  time.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// abort is a reply's status that drops the connection instead.
const abort = -1

func (f *fakeSigner) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.served = append(f.served, r.TLS.ServerName+" "+r.Host)
	if f.protos == nil {
		f.protos = map[string]int{}
	}
	f.protos[r.Proto]++
	f.mu.Unlock()
	var out reply
	stop := false
	if r.URL.Path == api.PathAttestation {
		out = f.attest(r)
		f.mu.Lock()
		stop, f.stopAfterAttest = f.stopAfterAttest, false
		f.mu.Unlock()
	} else {
		out = f.call(r)
	}
	if out.status == abort {
		panic(http.ErrAbortHandler)
	}
	if stop {
		w.Header().Set("Connection", "close")
		f.srv.Listener.Close()
	}
	w.Header().Set("Content-Type", out.ctype)
	w.WriteHeader(out.status)
	w.Write(out.body)
}

func plain(status int, code api.Code, message string) reply {
	b, _ := json.Marshal(api.ErrorBody{Error: code, Message: message})
	return reply{status: status, ctype: "application/json", body: b}
}

// attest answers GET /v1/attestation?nonce=… as the parent relays the
// enclave's answer.
func (f *fakeSigner) attest(r *http.Request) reply {
	nonce, err := hex.DecodeString(r.URL.Query().Get("nonce"))
	if r.Method != http.MethodGet || err != nil || len(nonce) == 0 {
		return plain(400, api.CodeBadRequest, "want GET with a hex nonce")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := len(f.instances) - 1
	if f.attestTo != nil {
		i = f.attestTo(f.attestations)
	}
	f.attestations++
	in := f.instances[i]
	ud, err := envelope.MarshalUserData(&api.UserData{Version: api.UserDataVersion, X25519: in.x25519,
		SignerID: fakeSignerID, ConfigSHA256: fakeConfig[:], Epoch: f.epoch})
	if err != nil {
		f.t.Error(err)
		return plain(500, api.CodeInternal, "user_data")
	}
	p := issuer.Payload{Timestamp: time.Now(), PCRs: f.pcrs, PublicKey: in.signer.SPKI(), UserData: ud, Nonce: nonce}
	if f.attestation != nil {
		f.attestation(&p)
	}
	doc, err := f.issuer.Issue(p)
	if err != nil {
		f.t.Error(err)
		return plain(500, api.CodeInternal, "issue")
	}
	out := reply{status: 200, ctype: "application/cbor", body: doc}
	if f.rewriteAttest != nil {
		out = f.rewriteAttest(out)
	}
	return out
}

// call answers POST /<route> as the enclave would: verified, then handled
// or refused, and signed either way.
func (f *fakeSigner) call(r *http.Request) reply {
	route := strings.TrimPrefix(r.URL.Path, "/")
	req, err := io.ReadAll(io.LimitReader(r.Body, envelope.MaxRequest+1))
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/jose" {
		return plain(400, api.CodeBadRequest, "want a POST of application/jose")
	}
	var chain [][]byte
	for _, c := range r.TLS.PeerCertificates {
		chain = append(chain, c.Raw)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[route]++
	f.signedFor = append(f.signedFor, signedFor(req))
	i := len(f.instances) - 1
	if f.callTo != nil {
		i = f.callTo(signedFor(req))
	}
	in := f.instances[i]
	var result any
	v, err := in.verifier.Verify(route, req, chain)
	if err == nil {
		result, err = f.handle(v)
	}
	var refusal *api.Error
	if err != nil && !errors.As(err, &refusal) {
		refusal = api.Errorf(api.CodeInternal, "internal error")
	}
	body, err := in.signer.Sign(req, time.Now(), result, refusal)
	if err != nil {
		f.t.Error(err)
		return plain(500, api.CodeInternal, "sign")
	}
	out := reply{status: 200, ctype: "application/jose", body: body}
	if refusal != nil {
		out.status = refusal.Code.Status()
	}
	if f.rewriteCall != nil {
		out = f.rewriteCall(in, req, out)
	}
	return out
}

// handle runs a verified call: derive-address and keys/rotate as the
// enclave answers them in shape, any other method with an empty result.
func (f *fakeSigner) handle(v *envelope.Verified) (any, error) {
	switch v.Method {
	case api.DeriveAddress.Route:
		var p api.DeriveAddressRequest
		if err := json.Unmarshal(v.Params, &p); err != nil {
			return nil, api.Errorf(api.CodeBadRequest, "params")
		}
		epoch := f.epoch
		if p.Epoch != nil {
			epoch = *p.Epoch
		}
		if epoch > f.epoch {
			return nil, api.Errorf(api.CodeUnknownEpoch, "epoch %d (the keyring holds 1..%d)", epoch, f.epoch)
		}
		return fakeAddress(p.OperatorOmni, epoch), nil
	case api.OIDCDiscovery.Route, api.OIDCToken.Route:
		return f.handleOIDC(v)
	case api.STSCredentials.Route:
		return f.handleSTS(v)
	case api.RotateKeys.Route:
		f.epoch++
		return api.KeyringChange{Epoch: f.epoch, Generation: uint64(f.epoch), Sequence: uint64(f.epoch)}, nil
	}
	return struct{}{}, nil
}

// fakeAddress is what the fake derives: a function of its inputs, so an
// answer to another call shows.
func fakeAddress(omni string, epoch uint32) api.DeriveAddressResponse {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", omni, epoch))
	return api.DeriveAddressResponse{Address: "0x" + hex.EncodeToString(sum[:20]), PublicKey: "0x04" + hex.EncodeToString(sum[:]), Epoch: epoch}
}

// signedFor reads the enclave kid a request names, without verifying it.
func signedFor(req []byte) string {
	parts := strings.Split(string(req), ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var p struct {
		Enclave string `json:"enclave"`
	}
	json.Unmarshal(payload, &p)
	return p.Enclave
}

// forge signs an arbitrary response payload with key under kid.
func forge(t *testing.T, key *ecdsa.PrivateKey, kid string, payload []byte) []byte {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// reqHash is the response payload's "req" for the request bytes req.
func reqHash(req []byte) string {
	sum := sha256.Sum256(req)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func deriveAddress(c *client.Client) (*api.DeriveAddressResponse, error) {
	return c.DeriveAddress(context.Background(), fakeOmni, 0)
}

// TestCallAgainstTheFakeSigner: the first call attests, the answer is the
// one the fake derived for these params, and later calls use the attested
// key without attesting again.
func TestCallAgainstTheFakeSigner(t *testing.T) {
	f := newFakeSigner(t)
	c := f.newClient(t)
	for i := range 3 {
		got, err := deriveAddress(c)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := fakeAddress(fakeOmni, 1); *got != want {
			t.Fatalf("call %d: %+v, want %+v", i, *got, want)
		}
	}
	f.configure(func(f *fakeSigner) { f.epoch = 7 })
	got, err := client.Invoke(context.Background(), c, api.DeriveAddress, &api.DeriveAddressRequest{OperatorOmni: fakeOmni, Epoch: new(uint32(7))})
	if err != nil || *got != fakeAddress(fakeOmni, 7) {
		t.Fatalf("epoch 7: %+v, %v", got, err)
	}
	attestations, calls, kids := f.seen(api.DeriveAddress.Route)
	if attestations != 1 || calls != 4 {
		t.Fatalf("%d attestations and %d calls, want 1 and 4", attestations, calls)
	}
	for _, kid := range kids {
		if kid != f.kid(0) {
			t.Fatalf("a call was signed for %q, not the attested instance %q", kid, f.kid(0))
		}
	}
}

// TestUnknownKeyMakesTheClientAttestAgain: an answer signed by a key the
// client has not attested makes it attest before it trusts anything from
// that key, once for a burst of such answers; a key that attestation does
// not vouch for is refused.
func TestUnknownKeyMakesTheClientAttestAgain(t *testing.T) {
	t.Run("restart", func(t *testing.T) {
		f := newFakeSigner(t)
		c := f.newClient(t)
		if _, err := deriveAddress(c); err != nil {
			t.Fatal(err)
		}
		f.restart()
		// The new instance refuses the request signed for the old one,
		// under its new key; the client attests it and signs again.
		got, err := deriveAddress(c)
		if err != nil || *got != fakeAddress(fakeOmni, 1) {
			t.Fatalf("after the restart: %+v, %v", got, err)
		}
		attestations, calls, kids := f.seen(api.DeriveAddress.Route)
		if attestations != 2 || calls != 3 {
			t.Fatalf("%d attestations and %d calls, want 2 and 3", attestations, calls)
		}
		if want := []string{f.kid(0), f.kid(0), f.kid(1)}; strings.Join(kids, ",") != strings.Join(want, ",") {
			t.Fatalf("calls signed for %q, want %q", kids, want)
		}
	})
	t.Run("burst_attests_once", func(t *testing.T) {
		f := newFakeSigner(t)
		c := f.newClient(t)
		if _, err := deriveAddress(c); err != nil {
			t.Fatal(err)
		}
		f.restart()
		const n = 16
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := deriveAddress(c)
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if attestations, _, _ := f.seen(api.DeriveAddress.Route); attestations != 2 {
			t.Fatalf("%d attestations for one restart, want 2", attestations)
		}
	})
	t.Run("bad_key_that_attestation_does_not_vouch_for", func(t *testing.T) {
		f := newFakeSigner(t)
		f.restart()
		// Attestations reach instance 0, calls instance 1: its key is
		// never attested, so nothing it signs is believed.
		f.configure(func(f *fakeSigner) {
			f.attestTo = func(int) int { return 0 }
			f.callTo = func(string) int { return 1 }
		})
		c := f.newClient(t)
		_, err := deriveAddress(c)
		if !errors.Is(err, client.ErrResponse) || !errors.Is(err, envelope.ErrUnknownKey) {
			t.Fatalf("answer by an unattested key: %v", err)
		}
		if attestations, calls, _ := f.seen(api.DeriveAddress.Route); attestations != 2 || calls != 1 {
			t.Fatalf("%d attestations and %d calls, want 2 (first, then for the unknown key) and 1", attestations, calls)
		}
	})
}

// TestParentErrors: what the parent answers itself is unauthenticated; the
// client reports it as a *client.ParentError with what could be read, and
// never takes a signed answer with the wrong content type as a result.
func TestParentErrors(t *testing.T) {
	unavailable := plain(503, api.CodeEnclaveUnavailable, "enclave not connected")
	for _, tc := range []struct {
		name         string
		attest, call func(honest reply) reply
		want         client.ParentError
		wantCalls    int
	}{
		{name: "plain_503", call: func(reply) reply { return unavailable }, wantCalls: 1,
			want: client.ParentError{Status: 503, Code: "enclave_unavailable", Message: "enclave not connected"}},
		{name: "plain_413", call: func(reply) reply { return plain(413, api.CodeBodyTooLarge, "body over 131072 bytes") }, wantCalls: 1,
			want: client.ParentError{Status: 413, Code: "body_too_large", Message: "body over 131072 bytes"}},
		{name: "bad_not_json", wantCalls: 1,
			call: func(reply) reply { return reply{502, "text/html", []byte("<html>502 Bad Gateway</html>")} },
			want: client.ParentError{Status: 502, Code: "unknown", Message: "unparsable answer"}},
		{name: "bad_error_body_with_unknown_field", wantCalls: 1,
			call: func(reply) reply {
				return reply{503, "application/json", []byte(`{"error":"overloaded","message":"m","retry":1}`)}
			},
			want: client.ParentError{Status: 503, Code: "unknown", Message: "unparsable answer"}},
		{name: "bad_signed_answer_as_json", wantCalls: 1,
			call: func(honest reply) reply { return reply{200, "application/json", honest.body} },
			want: client.ParentError{Status: 200, Code: "unknown", Message: "unparsable answer"}},
		{name: "bad_no_content_type", wantCalls: 1,
			call: func(honest reply) reply { return reply{200, "", honest.body} },
			want: client.ParentError{Status: 200, Code: "unknown", Message: "unparsable answer"}},
		{name: "attestation_plain_503", attest: func(reply) reply { return unavailable },
			want: client.ParentError{Status: 503, Code: "enclave_unavailable", Message: "enclave not connected"}},
		{name: "bad_attestation_as_json", attest: func(honest reply) reply { return reply{200, "application/json", honest.body} },
			want: client.ParentError{Status: 200, Code: "unknown", Message: "unparsable answer"}},
		{name: "bad_attestation_status", attest: func(honest reply) reply { return reply{202, honest.ctype, honest.body} },
			want: client.ParentError{Status: 202, Code: "unknown", Message: "unparsable answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSigner(t)
			f.configure(func(f *fakeSigner) {
				if tc.attest != nil {
					f.rewriteAttest = tc.attest
				}
				if tc.call != nil {
					f.rewriteCall = func(_ *instance, _ []byte, honest reply) reply { return tc.call(honest) }
				}
			})
			got, err := deriveAddress(f.newClient(t))
			var pe *client.ParentError
			if !errors.As(err, &pe) {
				t.Fatalf("got %+v, %v; want a *client.ParentError", got, err)
			}
			if *pe != tc.want {
				t.Fatalf("parent error %+v, want %+v", *pe, tc.want)
			}
			if _, calls, _ := f.seen(api.DeriveAddress.Route); calls != tc.wantCalls {
				t.Fatalf("%d calls reached the fake, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// TestBadAnswersAreRefused: an answer that is not the attested enclave's
// answer to this request, in this method's result type, is refused with
// client.ErrResponse, and the call is not signed again.
// newStranger is a key no enclave attests, and a response signer with it.
func newStranger(t *testing.T) (*ecdsa.PrivateKey, *envelope.ResponseSigner) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := envelope.NewResponseSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, signer
}

func TestBadAnswersAreRefused(t *testing.T) {
	stranger, strangerSigner := newStranger(t)
	payload := func(req []byte, members string) []byte {
		return fmt.Appendf(nil, `{"req":%q,"iat":%d%s}`, reqHash(req), time.Now().Unix(), members)
	}
	asJOSE := func(b []byte) reply { return reply{200, "application/jose", b} }
	for _, tc := range []struct {
		name    string
		rewrite func(t *testing.T, in *instance, req []byte, honest reply) reply
		// unknownKey: the answer names a key the client never attested.
		unknownKey bool
	}{
		{name: "bad_signed_by_another_key_under_the_attested_kid", rewrite: func(t *testing.T, in *instance, req []byte, _ reply) reply {
			return asJOSE(forge(t, stranger, in.kid(), payload(req, `,"result":{}`)))
		}},
		{name: "bad_signed_by_an_unattested_key", unknownKey: true, rewrite: func(t *testing.T, _ *instance, req []byte, _ reply) reply {
			b, err := strangerSigner.Sign(req, time.Now(), fakeAddress(fakeOmni, 1), nil)
			if err != nil {
				t.Fatal(err)
			}
			return asJOSE(b)
		}},
		{name: "bad_answers_another_request", rewrite: func(t *testing.T, in *instance, _ []byte, _ reply) reply {
			b, err := in.signer.Sign([]byte("another request"), time.Now(), fakeAddress(fakeOmni, 1), nil)
			if err != nil {
				t.Fatal(err)
			}
			return asJOSE(b)
		}},
		{name: "bad_truncated_jws", rewrite: func(_ *testing.T, _ *instance, _ []byte, honest reply) reply {
			return asJOSE(honest.body[:len(honest.body)-8])
		}},
		{name: "bad_signature_cut_off", rewrite: func(_ *testing.T, _ *instance, _ []byte, honest reply) reply {
			return asJOSE(honest.body[:strings.LastIndexByte(string(honest.body), '.')+1])
		}},
		{name: "bad_not_a_jws", rewrite: func(_ *testing.T, _ *instance, _ []byte, _ reply) reply {
			return asJOSE([]byte(`{"result":{}}`))
		}},
		{name: "bad_empty", rewrite: func(_ *testing.T, _ *instance, _ []byte, _ reply) reply { return asJOSE(nil) }},
		{name: "bad_larger_than_the_limit", rewrite: func(_ *testing.T, _ *instance, _ []byte, honest reply) reply {
			return asJOSE(append(honest.body, make([]byte, envelope.MaxResponse)...))
		}},
		{name: "bad_result_of_another_type", rewrite: func(t *testing.T, in *instance, req []byte, _ reply) reply {
			b, err := in.signer.Sign(req, time.Now(), map[string]any{"address": 5, "public_key": "0x04", "k3_epoch": 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return asJOSE(b)
		}},
		{name: "bad_result_with_an_unknown_member", rewrite: func(t *testing.T, in *instance, req []byte, _ reply) reply {
			b, err := in.signer.Sign(req, time.Now(), map[string]any{"address": "0x00", "public_key": "0x04", "k3_epoch": 1, "extra": true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return asJOSE(b)
		}},
		{name: "bad_result_not_an_object", rewrite: func(t *testing.T, in *instance, req []byte, _ reply) reply {
			b, err := in.signer.Sign(req, time.Now(), []string{"0x00"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return asJOSE(b)
		}},
		{name: "bad_result_and_error", rewrite: func(t *testing.T, in *instance, req []byte, _ reply) reply {
			return asJOSE(forge(t, in.key, in.kid(), payload(req, `,"result":{},"error":{"code":"internal","message":"m"}`)))
		}},
		{name: "bad_neither_result_nor_error", rewrite: func(t *testing.T, in *instance, req []byte, _ reply) reply {
			return asJOSE(forge(t, in.key, in.kid(), payload(req, ``)))
		}},
		{name: "bad_payload_member_unknown", rewrite: func(t *testing.T, in *instance, req []byte, _ reply) reply {
			return asJOSE(forge(t, in.key, in.kid(), payload(req, `,"result":{},"note":"x"`)))
		}},
		{name: "bad_payload_not_json", rewrite: func(t *testing.T, in *instance, _ []byte, _ reply) reply {
			return asJOSE(forge(t, in.key, in.kid(), []byte("not json")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSigner(t)
			f.configure(func(f *fakeSigner) {
				f.rewriteCall = func(in *instance, req []byte, honest reply) reply { return tc.rewrite(t, in, req, honest) }
			})
			got, err := deriveAddress(f.newClient(t))
			if !errors.Is(err, client.ErrResponse) || got != nil {
				t.Fatalf("got %+v, %v; want client.ErrResponse", got, err)
			}
			if errors.Is(err, envelope.ErrUnknownKey) != tc.unknownKey {
				t.Fatalf("unknown key reported %v, want %v: %v", !tc.unknownKey, tc.unknownKey, err)
			}
			attestations, calls, _ := f.seen(api.DeriveAddress.Route)
			wantAttestations := 1
			if tc.unknownKey {
				wantAttestations = 2
			}
			if attestations != wantAttestations || calls != 1 {
				t.Fatalf("%d attestations and %d calls, want %d and 1", attestations, calls, wantAttestations)
			}
		})
	}
}

// TestBadAttestationIsRefused: a document that does not satisfy the
// client's policy is refused with client.ErrAttestation before any request
// is signed.
func TestBadAttestationIsRefused(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384SPKI, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	userData := func(change func(*api.UserData)) func(*issuer.Payload) {
		return func(p *issuer.Payload) {
			ud, err := envelope.ParseUserData(p.UserData)
			if err != nil {
				t.Error(err)
				return
			}
			change(ud)
			if p.UserData, err = envelope.MarshalUserData(ud); err != nil {
				t.Error(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(p *issuer.Payload)
		want   error
	}{
		{"bad_nonce_of_another_request", func(p *issuer.Payload) { p.Nonce = []byte("an earlier nonce") }, attestation.ErrNonceMismatch},
		{"bad_pcr0", func(p *issuer.Payload) { p.PCRs = fakePCRs("another image") }, attestation.ErrPCRMismatch},
		{"bad_stale", func(p *issuer.Payload) { p.Timestamp = time.Now().Add(-2 * client.DefaultMaxAge) }, attestation.ErrStale},
		{"bad_no_public_key", func(p *issuer.Payload) { p.PublicKey = nil }, client.ErrAttestation},
		{"bad_key_not_p256", func(p *issuer.Payload) { p.PublicKey = p384SPKI }, client.ErrAttestation},
		{"bad_no_user_data", func(p *issuer.Payload) { p.UserData = nil }, client.ErrAttestation},
		{"bad_user_data_not_cbor", func(p *issuer.Payload) { p.UserData = []byte("{}") }, envelope.ErrUserData},
		{"bad_signer_id", userData(func(u *api.UserData) { u.SignerID = "another-signer" }), client.ErrAttestation},
		{"bad_config_hash", userData(func(u *api.UserData) { u.ConfigSHA256 = make([]byte, 32) }), client.ErrAttestation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSigner(t)
			f.configure(func(f *fakeSigner) { f.attestation = tc.change })
			got, err := deriveAddress(f.newClient(t))
			if !errors.Is(err, client.ErrAttestation) || !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("got %+v, %v; want client.ErrAttestation and %v", got, err, tc.want)
			}
			if _, calls, _ := f.seen(api.DeriveAddress.Route); calls != 0 {
				t.Fatalf("%d requests were sent before the enclave was attested", calls)
			}
		})
	}
	t.Run("bad_root", func(t *testing.T) {
		f := newFakeSigner(t)
		other, err := issuer.NewAuthority(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f.root = other.Root // the client trusts another development root
		_, err = deriveAddress(f.newClient(t))
		if !errors.Is(err, client.ErrAttestation) || !errors.Is(err, attestation.ErrUntrustedChain) {
			t.Fatalf("document under an untrusted root: %v", err)
		}
	})
}

// TestWrongEnclaveIsSignedAgainOnlyWhenRepeatable: a call refused
// wrong_enclave (it reached another instance than the one it was signed
// for) is signed again once, for the instance that refused, unless the
// method changes state: one rotation call must never become two.
func TestWrongEnclaveIsSignedAgainOnlyWhenRepeatable(t *testing.T) {
	// Two instances behind the parent. Attestations alternate between them;
	// a call always reaches the one it was not signed for, so every call
	// is refused wrong_enclave.
	misroute := func(f *fakeSigner) {
		f.attestTo = func(n int) int { return n % 2 }
		f.callTo = func(kid string) int {
			if kid == f.instances[0].kid() {
				return 1
			}
			return 0
		}
	}
	for _, m := range api.Methods() {
		t.Run(strings.ReplaceAll(m.Route, "/", "_"), func(t *testing.T) {
			f := newFakeSigner(t)
			f.restart()
			f.configure(misroute)
			err := f.newClient(t).Call(context.Background(), m.Route, struct{}{}, nil)
			if api.CodeOf(err) != api.CodeWrongEnclave {
				t.Fatalf("%s: %v, want wrong_enclave", m.Route, err)
			}
			_, calls, kids := f.seen(m.Route)
			want := []string{f.kid(0), f.kid(1)} // signed for 0, then once again for 1
			if m.ChangesState {
				want = want[:1] // never signed again
			}
			if calls != len(want) || strings.Join(kids, ",") != strings.Join(want, ",") {
				t.Fatalf("%s (changes state: %v): signed for %q, want %q", m.Route, m.ChangesState, kids, want)
			}
		})
	}
	t.Run("signed_again_for_the_instance_that_answers", func(t *testing.T) {
		f := newFakeSigner(t)
		c := f.newClient(t)
		if _, err := c.KeyStatus(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.restart()
		got, err := deriveAddress(c)
		if err != nil || *got != fakeAddress(fakeOmni, 1) {
			t.Fatalf("derive-address after a restart: %+v, %v", got, err)
		}
		if _, _, kids := f.seen(""); strings.Join(kids, ",") != strings.Join([]string{f.kid(0), f.kid(0), f.kid(1)}, ",") {
			t.Fatalf("signed for %q", kids)
		}
	})
	t.Run("rotation_attests_right_before_every_call", func(t *testing.T) {
		f := newFakeSigner(t)
		c := f.newClient(t)
		for i := range 2 {
			got, err := c.RotateKeys(context.Background())
			if err != nil || got.Epoch != uint32(2+i) {
				t.Fatalf("rotation %d: %+v, %v", i, got, err)
			}
		}
		if attestations, calls, _ := f.seen(api.RotateKeys.Route); attestations != 2 || calls != 2 {
			t.Fatalf("%d attestations for %d rotations, want one before each", attestations, calls)
		}
	})
	t.Run("rotation_refused_after_a_restart_is_not_signed_again", func(t *testing.T) {
		f := newFakeSigner(t)
		f.restart()
		// The attestation right before the rotation reaches instance 0,
		// the rotation instance 1 (a restart between the two).
		f.configure(func(f *fakeSigner) {
			f.attestTo = func(n int) int { return n % 2 }
			f.callTo = func(string) int { return 1 }
		})
		_, err := f.newClient(t).RotateKeys(context.Background())
		if api.CodeOf(err) != api.CodeWrongEnclave {
			t.Fatalf("rotation: %v, want wrong_enclave", err)
		}
		f.mu.Lock()
		epoch := f.epoch
		f.mu.Unlock()
		if _, calls, _ := f.seen(api.RotateKeys.Route); calls != 1 || epoch != 1 {
			t.Fatalf("%d rotation calls, epoch %d: want 1 call and no rotation", calls, epoch)
		}
	})
}

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"path/filepath"
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
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// foreignCaller is a caller whose certificate comes from a CA the signer
// does not trust, with an otherwise valid SPIFFE ID.
type foreignCaller struct {
	tls  tls.Certificate
	key  *ecdsa.PrivateKey
	leaf []byte
}

func newForeignCaller(t *testing.T, role string) foreignCaller {
	t.Helper()
	ca, caKey, err := devpki.NewCA("attacker CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.Parse("spiffe://" + devpki.TrustDomain + "/" + role)
	cert, key, err := devpki.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: role}, URIs: []*url.URL{id},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return foreignCaller{tls: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}, key: key, leaf: cert.Raw}
}

func writeDevConfig(t *testing.T, dir string) string {
	t.Helper()
	if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "pki", devpki.EnclaveJSON)
}

// hostileParent talks to the enclave's channel directly, as a compromised
// parent could.
type hostileParent struct {
	t   *testing.T
	ch  *channel.Client
	key *ecdsa.PublicKey
	kid string
}

func (e *env) hostileParent() *hostileParent {
	t := e.t
	addr, _ := channel.ParseAddr("unix://" + e.sock)
	ch := channel.NewClient(addr, channel.ClientOptions{PoolSize: 1})
	t.Cleanup(ch.Close)
	deadline := time.Now().Add(5 * time.Second)
	for ch.Live() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	r, err := ch.Call(context.Background(), &channel.Call{Route: "attestation", Body: nonce})
	if err != nil || r.Status != 200 {
		t.Fatalf("attestation over the channel: %v %d", err, r.Status)
	}
	doc, err := attestation.Verify(r.Body, attestation.Policy{Roots: e.devRoots, Clock: time.Now, Nonce: nonce, PCRs: e.pcrs})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.ParsePKIXPublicKey(doc.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &hostileParent{t: t, ch: ch, key: pk.(*ecdsa.PublicKey), kid: envelope.KeyID(doc.PublicKey)}
}

// send sends a call and returns the code of the enclave's signed refusal
// ("" for success), checking the response is signed and names the request.
func (h *hostileParent) send(route string, body []byte, chain [][]byte) api.Code {
	h.t.Helper()
	r, err := h.ch.Call(context.Background(), &channel.Call{Route: route, Body: body, Chain: chain})
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := envelope.VerifyResponse(r.Body, body, func(kid string) *ecdsa.PublicKey {
		if kid == h.kid {
			return h.key
		}
		return nil
	})
	if err != nil {
		h.t.Fatalf("enclave answer (%d %q) does not verify: %v", r.Status, r.Body, err)
	}
	if resp.Err == nil {
		return ""
	}
	if r.Status != resp.Err.Code.Status() {
		h.t.Errorf("status %d for %s, want %d", r.Status, resp.Err.Code, resp.Err.Code.Status())
	}
	return resp.Err.Code
}

func (e *env) request(role, method string, params any, mutate func(*envelope.Outgoing)) ([]byte, [][]byte) {
	e.t.Helper()
	cert := e.tlsCert(role)
	_, kid := e.enclaveKey(e.sock)
	out := envelope.Outgoing{Method: method, Params: params, Audience: devpki.SignerID, Enclave: kid, IAT: time.Now(), Nonce: randomNonce()}
	if mutate != nil {
		mutate(&out)
	}
	body, err := envelope.SignRequest(envelope.Credentials{Signer: cert.PrivateKey.(*ecdsa.PrivateKey), Leaf: cert.Certificate[0]}, out)
	if err != nil {
		e.t.Fatal(err)
	}
	return body, cert.Certificate
}

func randomNonce() []byte {
	n := make([]byte, 16)
	rand.Read(n)
	return n
}

// TestHostileParentCannotForgeOrReplayRequests is G3: every request the
// enclave acts on is the caller's own, fresh, and within its role.
func TestHostileParentCannotForgeOrReplayRequests(t *testing.T) {
	e := newEnv(t)
	h := e.hostileParent()
	params := map[string]string{"operator_omni": omniHex}
	const route = "v1/derive-address"

	good, chain := e.request("broker", route, params, nil)
	if code := h.send(route, good, chain); code != "" {
		t.Fatalf("a genuine request was refused: %s", code)
	}

	altered := func() []byte {
		body, _ := e.request("broker", route, params, nil)
		parts := bytes.Split(body, []byte("."))
		payload, _ := base64.RawURLEncoding.DecodeString(string(parts[1]))
		payload = bytes.Replace(payload, []byte(omniHex[:8]), []byte("ffffffff"), 1)
		parts[1] = []byte(base64.RawURLEncoding.EncodeToString(payload))
		return bytes.Join(parts, []byte("."))
	}()
	forged := func() []byte {
		// Signed by a key the parent holds, naming the broker's certificate.
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		body, err := envelope.SignRequest(envelope.Credentials{Signer: key, Leaf: chain[0]},
			envelope.Outgoing{Method: route, Params: params, Audience: devpki.SignerID, Enclave: h.kid, IAT: time.Now(), Nonce: randomNonce()})
		if err != nil {
			t.Fatal(err)
		}
		return body
	}()
	foreign := newForeignCaller(t, "broker")
	foreignBody, err := envelope.SignRequest(envelope.Credentials{Signer: foreign.key, Leaf: foreign.leaf},
		envelope.Outgoing{Method: route, Params: params, Audience: devpki.SignerID, Enclave: h.kid, IAT: time.Now(), Nonce: randomNonce()})
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := e.request("broker", route, params, func(o *envelope.Outgoing) { o.IAT = time.Now().Add(-5 * time.Minute) })
	future, _ := e.request("broker", route, params, func(o *envelope.Outgoing) { o.IAT = time.Now().Add(5 * time.Minute) })
	wrongAud, _ := e.request("broker", route, params, func(o *envelope.Outgoing) { o.Audience = "another-signer" })
	otherInstance, _ := e.request("broker", route, params, func(o *envelope.Outgoing) { o.Enclave = "another-instance" })
	shortNonce, _ := e.request("broker", route, params, func(o *envelope.Outgoing) { o.Nonce = []byte("short") })
	otherRoute, _ := e.request("broker", "dev/derive-address", map[string]string{"omni_account": omniHex}, nil)
	adminBody, adminChain := e.request("admin", route, params, nil)
	_, workerChain := e.request("worker", route, params, nil)
	brokerForSwap, _ := e.request("broker", route, params, nil)
	replayed, replayedChain := e.request("broker", route, params, nil)
	if code := h.send(route, replayed, replayedChain); code != "" {
		t.Fatalf("first use refused: %s", code)
	}

	tests := []struct {
		name  string
		route string
		body  []byte
		chain [][]byte
		want  api.Code
	}{
		{"bad_altered_payload", route, altered, chain, api.CodeUnauthenticated},
		{"bad_forged_signature", route, forged, chain, api.CodeUnauthenticated},
		{"bad_certificate_from_other_ca", route, foreignBody, [][]byte{foreign.leaf}, api.CodeUnauthenticated},
		{"bad_chain_swapped_for_another_caller", route, brokerForSwap, workerChain, api.CodeUnauthenticated},
		{"bad_no_chain_forwarded", route, brokerForSwap, nil, api.CodeUnauthenticated},
		{"bad_replayed_envelope", route, replayed, replayedChain, api.CodeReplayed},
		{"bad_stale_iat", route, stale, chain, api.CodeStale},
		{"bad_future_iat", route, future, chain, api.CodeStale},
		{"bad_wrong_audience", route, wrongAud, chain, api.CodeWrongAudience},
		{"bad_signed_for_another_instance", route, otherInstance, chain, api.CodeWrongEnclave},
		{"bad_short_nonce", route, shortNonce, chain, api.CodeBadRequest},
		{"bad_signed_for_another_route", route, otherRoute, chain, api.CodeBadRequest},
		{"bad_role_not_allowed", route, adminBody, adminChain, api.CodeUnauthorized},
		{"bad_not_a_jws", route, []byte("garbage"), chain, api.CodeBadRequest},
		{"bad_dev_route_auth_failure_is_unauthorized", "dev/derive-address", forged, chain, api.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := h.send(tt.route, tt.body, tt.chain); code != tt.want {
				t.Fatalf("enclave answered %q, want %q", code, tt.want)
			}
		})
	}
}

// TestHostileParentMalformedFramesDoNotStopTheEnclave writes garbage to the
// enclave's socket; the enclave drops that connection and keeps serving.
func TestHostileParentMalformedFramesDoNotStopTheEnclave(t *testing.T) {
	e := newEnv(t)
	for _, junk := range [][]byte{{0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef}, bytes.Repeat([]byte{0}, 64)} {
		conn, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(junk)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 1))
		conn.Close()
	}
	if _, err := e.client("broker").DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatalf("after malformed frames: %v", err)
	}
}

// forgedAttestation is a document in the right format, with the right PCRs,
// binding key, under a root the client does not trust.
func (e *env) forgedAttestation(key *ecdsa.PrivateKey) []byte {
	e.t.Helper()
	a, err := issuer.NewAuthority(time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	is, err := a.NewIssuer(time.Now(), issuer.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pcrs := map[int][]byte{}
	for i := range 16 {
		pcrs[i] = make([]byte, 48)
	}
	for i, v := range e.pcrs {
		pcrs[i] = v
	}
	doc, err := is.Issue(issuer.Payload{Timestamp: time.Now(), PCRs: pcrs, PublicKey: spki})
	if err != nil {
		e.t.Fatal(err)
	}
	return doc
}

// resign re-signs a response's payload with key, as a parent holding its
// own key would.
func resign(body []byte, key *ecdsa.PrivateKey) []byte {
	jws, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return body
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithHeader("kid", envelope.KeyID(spki)))
	out, err := signer.Sign(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return body
	}
	s, _ := out.CompactSerialize()
	return []byte(s)
}

// TestClientDetectsTamperedResponses is G2 and G4: with a parent that
// rewrites the enclave's replies, the client accepts nothing.
func TestClientDetectsTamperedResponses(t *testing.T) {
	e := newEnv(t)
	m := e.behindMITM()
	c := e.client("broker")
	if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatalf("through a passive proxy: %v", err)
	}
	ownKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var lastMu sync.Mutex
	var last []byte // the previous method reply, for replays
	methodReplies := func(rewrite func(body []byte) []byte) func(call, reply *channel.Frame) bool {
		return func(call, reply *channel.Frame) bool {
			if call.Route == "attestation" || call.Route == "ready" {
				return false
			}
			lastMu.Lock()
			defer lastMu.Unlock()
			orig := reply.Body
			if rewrite != nil {
				reply.Body = rewrite(orig)
			}
			last = orig
			return false
		}
	}
	tests := []struct {
		name    string
		rewrite func([]byte) []byte
		want    error
	}{
		{"bad_altered_response", func(b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 0x01
			return b
		}, client.ErrResponse},
		{"bad_replayed_response", func(b []byte) []byte {
			if last != nil {
				return last
			}
			return b
		}, client.ErrResponse},
		{"bad_response_signed_by_unattested_key", func(b []byte) []byte { return resign(b, ownKey) }, envelope.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.setHooks(nil, methodReplies(nil))
			if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
				t.Fatal(err)
			}
			m.setHooks(nil, methodReplies(tt.rewrite))
			_, err := c.DeriveAddress(ctx(t), omniHex, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DeriveAddress: %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("bad_attestation_under_another_root", func(t *testing.T) {
		forged := e.forgedAttestation(ownKey)
		m.setHooks(nil, func(call, reply *channel.Frame) bool {
			if call.Route == "attestation" {
				reply.Body = forged
			}
			return false
		})
		_, err := e.client("broker").Attest(ctx(t))
		if !errors.Is(err, client.ErrAttestation) || !errors.Is(err, attestation.ErrUntrustedChain) {
			t.Fatalf("Attest: %v, want ErrAttestation (untrusted chain)", err)
		}
	})
	t.Run("bad_attestation_with_wrong_pcrs", func(t *testing.T) {
		m.setHooks(nil, nil)
		wrong := map[int][]byte{0: make([]byte, 48), 1: e.pcrs[1], 2: e.pcrs[2]}
		wrong[0][0] = 1
		_, err := e.client("broker", func(c *client.Config) { c.Policy.PCRs = wrong }).Attest(ctx(t))
		if !errors.Is(err, attestation.ErrPCRMismatch) {
			t.Fatalf("Attest: %v, want ErrPCRMismatch", err)
		}
	})
	t.Run("bad_dropped_reply_times_out", func(t *testing.T) {
		m.setHooks(nil, func(call, reply *channel.Frame) bool { return call.Route == "v1/derive-address" })
		short, cancel := context.WithTimeout(ctx(t), 2*time.Second)
		defer cancel()
		if _, err := c.DeriveAddress(short, omniHex, 0); err == nil {
			t.Fatal("a dropped reply produced a result")
		}
	})
}

// TestParentNeverSeesTheKEK is G1 for caller-entitled secrets: everything
// that crosses the parent during derive-cred-kek is captured, and the KEK
// appears in none of it, in any encoding.
func TestParentNeverSeesTheKEK(t *testing.T) {
	e := newEnv(t)
	m := e.behindMITM()
	kek, err := e.client("broker").DeriveCredentialKEK(ctx(t), omniHex, 1)
	if err != nil {
		t.Fatal(err)
	}
	omni := unhex(t, omniHex)
	want, _ := hkdf.Key(sha256.New, e.devSecret(), []byte("agentkeys.kek-salt.v2"), "agentkeys.user.v1"+string(omni), 32)
	if !bytes.Equal(kek, want) {
		t.Fatal("the decrypted KEK is not the DESIGN §5.1 KEK")
	}
	seen := m.recorded()
	if len(seen) < 1000 {
		t.Fatalf("captured only %d bytes", len(seen))
	}
	for name, form := range map[string][]byte{
		"raw":        kek,
		"hex":        []byte(hex.EncodeToString(kek)),
		"HEX":        []byte(strings.ToUpper(hex.EncodeToString(kek))),
		"base64":     []byte(base64.StdEncoding.EncodeToString(kek)[:40]),
		"base64url":  []byte(base64.RawURLEncoding.EncodeToString(kek)[:40]),
		"raw prefix": kek[:12],
	} {
		if bytes.Contains(seen, form) {
			t.Fatalf("the KEK (%s) crossed the parent", name)
		}
	}
}

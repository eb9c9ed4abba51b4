// Package client calls nitro-signer. A Client verifies an attestation
// document (with a fresh nonce, against its policy) before it trusts the
// signer, signs every request with its TLS client certificate's key, and
// accepts a response only when it is signed by an attested enclave key and
// names the request it answers. A response signed by a key it has not seen
// attested makes it attest again first.
package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// Config configures a Client.
type Config struct {
	// URL is one parent's base URL, e.g. https://127.0.0.1:8443: the one
	// endpoint of a client for one replica (Endpoints, for several).
	URL string
	// Endpoints are the parents' base URLs (https://HOST[:PORT][/PATH]),
	// after URL if both are set. A host given as a DNS name is resolved
	// by Resolver into one replica per address, dialled at that address
	// while the URL, the Host header and the TLS server name keep the
	// name; it is resolved again every ResolveInterval, and sooner (at
	// most once a second) after one of its replicas fails. A host given
	// as an IP address is one replica. See "Calling a fleet" in
	// docs/protocol.md.
	Endpoints []string
	// Resolver resolves DNS endpoints. Default net.DefaultResolver.
	Resolver Resolver
	// ResolveInterval is how often a DNS endpoint is resolved again.
	// Default DefaultResolveInterval.
	ResolveInterval time.Duration
	// Retry bounds failover from one replica to another; the zero value
	// takes the defaults.
	Retry RetryPolicy
	// Certificate is the caller's mTLS certificate; its key signs requests.
	Certificate tls.Certificate
	// ServerCAs verify the parent's TLS certificate. They protect the
	// transport only: trust in answers comes from attestation.
	ServerCAs *x509.CertPool
	// Policy is what an attestation document must satisfy. It must pin
	// PCR0, PCR1 and PCR2 (Policy.PCRs) or allow a list of measurements
	// (Policy.Allowed, from releases.json: each pins PCR0–2 or the signing
	// certificate's PCR8, the attestation package checks); the nonce is
	// chosen per attestation; MaxAge defaults to DefaultMaxAge.
	Policy attestation.Policy
	// SignerID is the deployment the client expects (user_data signer_id).
	SignerID string
	// ConfigSHA256, if set, pins the enclave configuration's hash.
	ConfigSHA256 []byte
	// Clock is the client's time source (required): attestation
	// freshness, key lifetimes, backoff and resolution intervals.
	Clock func() time.Time
	// Transport, if set, replaces the HTTP transport (its TLS settings are
	// then the caller's responsibility). An *http.Transport without a
	// Proxy is cloned for each address of a DNS endpoint; any other
	// transport makes a DNS endpoint one replica that the transport
	// resolves, and makes every request that failed count as sent (only
	// an *http.Transport reports whether a request got a connection).
	Transport http.RoundTripper
	// DialTimeout bounds a connection attempt of the default transport.
	// Default DefaultDialTimeout.
	DialTimeout time.Duration
	// KeyLifetime is how long an attested enclave key is trusted after its
	// attestation; the client attests again before it signs for, or
	// accepts an answer from, an older one. Default DefaultKeyLifetime.
	KeyLifetime time.Duration
	// MaxKeys bounds the attested keys remembered (the oldest is forgotten
	// first). Default DefaultMaxKeys.
	MaxKeys int
	// Logger, if set, is told when a replica goes down or comes back, an
	// answer is refused, or a name resolves to other addresses. Nil logs
	// nothing.
	Logger *slog.Logger
}

// RetryPolicy bounds how a call fails over; zero fields take the defaults.
//
// A call is tried at most MaxAttempts times, each retry on a replica it
// has not tried. Each retry spends a token from a bucket that the whole
// client shares: the bucket holds at most Burst tokens, starts full, and
// every call earns Ratio of a token. So over any stretch, retries are at
// most Ratio of the calls plus Burst, and an outage of the fleet cannot
// make the client send more than (1 + Ratio) times its own calls, after
// the first Burst. Signing again for the instance that refused a request
// as meant for another (wrong_enclave) is bounded by MaxAttempts but
// spends no token: it is a signed answer from a live enclave, every
// enclave restart causes one per caller, and a rolling restart must not
// spend what real failover needs.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of one call, the first included;
	// 1 never retries. Default DefaultMaxAttempts.
	MaxAttempts int
	// Ratio is the tokens each call earns. Default DefaultRetryRatio.
	Ratio float64
	// Burst is the tokens the bucket holds. Default DefaultRetryBurst.
	Burst int
	// MinBackoff is how long a replica that failed is left alone before
	// one call probes it; each failed probe doubles it, up to MaxBackoff.
	// Defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// orDefault sets *p to d when it is the zero value.
func orDefault[T comparable](p *T, d T) {
	var zero T
	if *p == zero {
		*p = d
	}
}

// withDefaults fills unset fields and checks the others.
func (p RetryPolicy) withDefaults() (RetryPolicy, error) {
	if p.MaxAttempts < 0 || p.Ratio < 0 || p.Burst < 0 || p.MinBackoff < 0 || p.MaxBackoff < 0 {
		return p, errors.New("client: RetryPolicy fields must not be negative")
	}
	orDefault(&p.MaxAttempts, DefaultMaxAttempts)
	orDefault(&p.Ratio, DefaultRetryRatio)
	orDefault(&p.Burst, DefaultRetryBurst)
	orDefault(&p.MinBackoff, DefaultMinBackoff)
	orDefault(&p.MaxBackoff, DefaultMaxBackoff)
	if p.MaxBackoff < p.MinBackoff {
		return p, errors.New("client: RetryPolicy.MaxBackoff is below MinBackoff")
	}
	return p, nil
}

// Errors of the client. A refusal by the enclave is an *api.Error.
var (
	// ErrAttestation: the attestation document, its key or its user_data
	// did not satisfy the policy.
	ErrAttestation = errors.New("client: attestation refused")
	// ErrResponse: a response was not authentic (bad signature, unattested
	// key, another request's answer) or not well formed.
	ErrResponse = errors.New("client: response refused")
	// ErrNoRequest: Send or Open was given no Request (or Open no Answer);
	// both come from Prepare and Send.
	ErrNoRequest = errors.New("client: no prepared request or answer")
	// ErrRetryBudget: a call stopped before trying another replica because
	// the client's retry budget was spent (a *FailoverError).
	ErrRetryBudget = errors.New("client: retry budget spent")
	// ErrOutcomeUnknown: a call that changes state (keys rotate, import,
	// peer-import) was sent and got no answer signed by the enclave, so it
	// may or may not have run; it is never signed again for another
	// replica. Check (keys status) before repeating it.
	ErrOutcomeUnknown = errors.New("client: the request may have reached the enclave: its outcome is unknown")
)

// FailoverError is the error of a call that failed on a replica and could
// not, or might not, try another: MaxAttempts reached, every replica
// tried, or the retry budget spent. Err is the last attempt's error.
type FailoverError struct {
	Attempts int
	// BudgetSpent: the call stopped because the retry budget was spent.
	BudgetSpent bool
	Err         error
}

// Error names the attempts and the last attempt's error.
func (e *FailoverError) Error() string {
	why := ""
	if e.BudgetSpent {
		why = ", retry budget spent"
	}
	return fmt.Sprintf("client: call failed after %d attempts%s: %v", e.Attempts, why, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *FailoverError) Unwrap() error { return e.Err }

// Is reports ErrRetryBudget when the budget stopped the call.
func (e *FailoverError) Is(target error) bool { return target == ErrRetryBudget && e.BudgetSpent }

// ParentError is an error the parent produced itself (enclave unavailable,
// overload, body too large). It is not authenticated: treat it as a
// transport failure.
type ParentError struct {
	Status  int
	Code    string
	Message string
}

func (e *ParentError) Error() string {
	return fmt.Sprintf("parent answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Attested is a verified enclave key.
type Attested struct {
	KeyID    string
	Key      *ecdsa.PublicKey
	UserData *api.UserData
	Document *attestation.Document
	// Expires is when the client stops trusting the key without attesting
	// again.
	Expires time.Time
	// Replica is the replica that served the document: its endpoint, and
	// the address dialled when the endpoint is a DNS name. It is where the
	// key was learnt, not a limit on it (see "Calling a fleet" in
	// docs/protocol.md).
	Replica string
}

// Client is safe for concurrent use.
type Client struct {
	cfg   Config
	creds envelope.Credentials
	retry RetryPolicy
	fleet fleet

	mu   sync.RWMutex
	keys map[string]*Attested

	budget                 budget
	calls, retries, denied atomic.Uint64
}

// New checks the configuration and returns a client. It does not contact
// the signer, nor resolve a name.
func New(cfg Config) (*Client, error) {
	if cfg.Clock == nil {
		return nil, errors.New("client: Clock is required")
	}
	if cfg.SignerID == "" {
		return nil, errors.New("client: SignerID is required")
	}
	if len(cfg.Policy.Allowed) == 0 {
		for _, i := range []int{0, 1, 2} {
			if _, ok := cfg.Policy.PCRs[i]; !ok {
				return nil, fmt.Errorf("client: the policy must pin PCR0, PCR1 and PCR2 (PCR%d missing) or allow measurements", i)
			}
		}
	}
	orDefault(&cfg.Policy.MaxAge, DefaultMaxAge)
	orDefault(&cfg.KeyLifetime, DefaultKeyLifetime)
	orDefault(&cfg.MaxKeys, DefaultMaxKeys)
	orDefault(&cfg.ResolveInterval, DefaultResolveInterval)
	orDefault(&cfg.DialTimeout, DefaultDialTimeout)
	if cfg.KeyLifetime < 0 || cfg.MaxKeys < 1 || cfg.ResolveInterval < 0 || cfg.DialTimeout < 0 {
		return nil, errors.New("client: KeyLifetime, MaxKeys, ResolveInterval and DialTimeout must be positive")
	}
	retry, err := cfg.Retry.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	cfg.Policy.At = time.Time{}
	cfg.Policy.Clock = cfg.Clock
	if len(cfg.Certificate.Certificate) == 0 || cfg.Certificate.PrivateKey == nil {
		return nil, errors.New("client: Certificate with its key is required")
	}
	signer, ok := cfg.Certificate.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("client: certificate key is not a crypto.Signer")
	}
	endpoints, err := parseEndpoints(cfg.URL, cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	creds := envelope.Credentials{Leaf: cfg.Certificate.Certificate[0], Signer: signer}
	transport := cfg.Transport
	if transport == nil {
		transport = &http.Transport{
			TLSClientConfig: &tls.Config{
				MinVersion:   tls.VersionTLS13,
				RootCAs:      cfg.ServerCAs,
				Certificates: []tls.Certificate{cfg.Certificate},
			},
			DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	ht, traced := transport.(*http.Transport)
	c := &Client{cfg: cfg, creds: creds, retry: retry, keys: map[string]*Attested{},
		budget: budget{tokens: float64(retry.Burst), burst: float64(retry.Burst), ratio: retry.Ratio}}
	shared := &http.Client{Transport: transport, CheckRedirect: noRedirects}
	c.fleet = fleet{
		endpoints: endpoints, resolver: cfg.Resolver, interval: cfg.ResolveInterval,
		expand: traced && ht.Proxy == nil && ht.DialTLSContext == nil,
		newReplica: func(ep *endpoint, addr string) *replica {
			r := &replica{ep: ep, addr: addr, base: ep.scheme + "://" + net.JoinHostPort(ep.host, ep.port) + ep.path,
				http: shared, traced: traced}
			if addr != "" {
				r.http = &http.Client{Transport: pinDial(ht, addr, ep.port, cfg.DialTimeout), CheckRedirect: noRedirects}
			}
			return r
		},
	}
	c.fleet.build()
	return c, nil
}

// noRedirects makes a redirect the answer: a signed request goes only to
// the replica it was signed at.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// parseEndpoints checks URL and Endpoints and drops repeats.
func parseEndpoints(first string, more []string) ([]*endpoint, error) {
	raws := more
	if first != "" {
		raws = append([]string{first}, more...)
	}
	if len(raws) == 0 {
		return nil, errors.New("client: URL or Endpoints is required")
	}
	if len(raws) > maxEndpoints {
		return nil, fmt.Errorf("client: %d endpoints, at most %d", len(raws), maxEndpoints)
	}
	var out []*endpoint
	seen := map[string]bool{}
	for _, raw := range raws {
		ep, err := parseEndpoint(raw)
		if err != nil {
			return nil, err
		}
		if !seen[ep.raw] {
			seen[ep.raw] = true
			out = append(out, ep)
		}
	}
	return out, nil
}

// Attest fetches an attestation document with a fresh nonce from one
// replica (another if it fails, as a call fails over), verifies it and
// remembers the enclave key it binds.
func (c *Client) Attest(ctx context.Context) (*Attested, error) {
	_, a, err := c.FetchAttestation(ctx)
	return a, err
}

// FetchAttestation is Attest that also returns the raw document.
func (c *Client) FetchAttestation(ctx context.Context) ([]byte, *Attested, error) {
	var doc []byte
	var a *Attested
	err := c.failover(ctx, nil, func(r *replica, _ string, _ bool) (verdict, string, error) {
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		var err error
		doc, a, err = c.attestAt(ctx, r)
		return c.judge(ctx, r, err, "")
	})
	return doc, a, err
}

// attestAt attests the enclave behind replica r and makes its key the one
// requests to r are signed for.
func (c *Client) attestAt(ctx context.Context, r *replica) ([]byte, *Attested, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+api.PathAttestation+"?nonce="+hex.EncodeToString(nonce), nil)
	if err != nil {
		return nil, nil, err
	}
	r.attestations.Add(1)
	body, status, ctype, err := c.do(r, req, attestation.MaxDocumentSize)
	if err != nil {
		return nil, nil, err
	}
	if status != 200 || ctype != "application/cbor" {
		return nil, nil, parentError(status, body)
	}
	policy := c.cfg.Policy
	policy.Nonce = nonce
	doc, err := attestation.Verify(body, policy)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrAttestation, err)
	}
	if doc.PublicKey == nil || doc.UserData == nil {
		return nil, nil, fmt.Errorf("%w: document binds no public_key or user_data", ErrAttestation)
	}
	pk, err := x509.ParsePKIXPublicKey(doc.PublicKey)
	key, ok := pk.(*ecdsa.PublicKey)
	if err != nil || !ok || key.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: public_key is not a P-256 key", ErrAttestation)
	}
	ud, err := envelope.ParseUserData(doc.UserData)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrAttestation, err)
	}
	if ud.SignerID != c.cfg.SignerID {
		return nil, nil, fmt.Errorf("%w: signer_id %q, want %q", ErrAttestation, ud.SignerID, c.cfg.SignerID)
	}
	if c.cfg.ConfigSHA256 != nil && !bytes.Equal(ud.ConfigSHA256, c.cfg.ConfigSHA256) {
		return nil, nil, fmt.Errorf("%w: enclave configuration %x is not the pinned one", ErrAttestation, ud.ConfigSHA256)
	}
	a := &Attested{KeyID: envelope.KeyID(doc.PublicKey), Key: key, UserData: ud, Document: doc,
		Expires: c.cfg.Clock().Add(c.cfg.KeyLifetime), Replica: r.name()}
	c.remember(a)
	r.mu.Lock()
	r.kid = a.KeyID
	r.mu.Unlock()
	r.attestGen.Add(1)
	return body, a, nil
}

// remember keeps a, forgetting expired keys and, past MaxKeys, the ones
// that expire first.
func (c *Client) remember(a *Attested) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Clock()
	for kid, k := range c.keys {
		if !now.Before(k.Expires) {
			delete(c.keys, kid)
		}
	}
	delete(c.keys, a.KeyID)
	for len(c.keys) >= c.cfg.MaxKeys {
		var oldest *Attested
		for _, k := range c.keys {
			if oldest == nil || k.Expires.Before(oldest.Expires) {
				oldest = k
			}
		}
		delete(c.keys, oldest.KeyID)
	}
	c.keys[a.KeyID] = a
}

// key returns the attested key kid while it is trusted. Any attested key
// is trusted for an answer from any replica: the key is the trust anchor,
// the replica only routing (docs/protocol.md, "Calling a fleet").
func (c *Client) key(kid string) *ecdsa.PublicKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a, ok := c.keys[kid]; ok && c.cfg.Clock().Before(a.Expires) {
		return a.Key
	}
	return nil
}

// Call calls method ("v1/derive-address") with params and decodes the
// verified result into result. A refusal by the enclave is returned as an
// *api.Error. It spreads calls over the replicas and fails over as
// "Calling a fleet" in docs/protocol.md says.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.call(ctx, nil, method, params, result, nil)
}

// changesState reports whether a second execution of method is not the
// first's answer again (a rotation twice is two epochs,
// api.Method.ChangesState): the client never signs one of them twice for
// one call once a signed copy may have left the process.
func changesState(method string) bool {
	m, _ := api.Lookup(method)
	return m.ChangesState
}

// call is Call, at replica pin only when pin is set, with a reply key for
// the methods that encrypt their answer.
func (c *Client) call(ctx context.Context, pin *replica, method string, params, result any, replyKey *jose.JSONWebKey) error {
	if changesState(method) {
		return c.changeState(ctx, pin, method, func(*Attested) (any, error) { return params, nil }, result)
	}
	return c.failover(ctx, pin, func(r *replica, kid string, retry bool) (verdict, string, error) {
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		req, err := c.prepareAt(ctx, r, method, params, replyKey, kid)
		if err != nil {
			return c.judge(ctx, r, err, "")
		}
		req.retry = retry
		a, err := c.send(ctx, req)
		if err != nil {
			return c.judge(ctx, r, err, "")
		}
		signer, err := c.open(ctx, req, a, result)
		return c.judge(ctx, r, err, signer)
	})
}

// changeState runs a call that changes state. It attests the replica
// right before, signs for the instance that answers, and never signs
// again once the request may have left: a re-signed copy would leave the
// first one valid at the instance it names, and a parent could deliver
// both (one call, two rotations on two replicas). Only a request that
// provably never left (it got no connection) is signed again, for
// another replica. params makes the call's params for the attested
// enclave (import encrypts to its key).
func (c *Client) changeState(ctx context.Context, pin *replica, method string, params func(*Attested) (any, error), result any) error {
	return c.failover(ctx, pin, func(r *replica, _ string, retry bool) (verdict, string, error) {
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		_, a, err := c.attestAt(ctx, r)
		if err != nil {
			return c.judge(ctx, r, err, "") // nothing was signed yet
		}
		p, err := params(a)
		if err != nil {
			return done, "", err
		}
		req, err := c.sign(r, method, p, nil, a.KeyID, r.attestGen.Load())
		if err != nil {
			return done, "", err
		}
		req.retry = retry
		ans, err := c.send(ctx, req)
		var te *transportError
		if errors.As(err, &te) && !te.sent {
			return c.judge(ctx, r, err, "")
		}
		if err == nil {
			_, err = c.open(ctx, req, ans, result)
		}
		c.judge(ctx, r, err, "") // for r's health only
		var refusal *api.Error
		if err != nil && !errors.As(err, &refusal) {
			// No answer signed by the enclave: it may have run.
			err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		return done, "", err
	})
}

// A Request is a signed request, ready to send. It is valid for the
// enclave's freshness window after it was made, only at the enclave
// instance the client had attested at its replica when it was made
// (another answers wrong_enclave), and can be sent once: the enclave
// refuses its nonce the second time. Send posts it to that replica.
type Request struct {
	method  string
	body    []byte
	replica *replica
	gen     uint64 // the replica's attestation generation when it was made
	retry   bool   // an attempt after the first of its call
}

// An Answer is what the parent returned for a Request, not yet verified.
type Answer struct {
	status int
	ctype  string
	body   []byte
}

// Prepare signs a request to call method with params, attesting first if
// the client has not attested the replica it picks (the next one, as
// calls spread). Prepare, Send and Open are Call in three steps, for
// callers that sign ahead or verify later (signer-bench signs before its
// timed window and verifies every answer after it); they do not fail
// over, except that Prepare tries another replica if attesting one fails.
func (c *Client) Prepare(ctx context.Context, method string, params any) (*Request, error) {
	var req *Request
	err := c.failover(ctx, nil, func(r *replica, _ string, _ bool) (verdict, string, error) {
		var err error
		req, err = c.prepareAt(ctx, r, method, params, nil, "")
		return c.judge(ctx, r, err, "")
	})
	return req, err
}

// prepareAt signs a request for replica r, for the enclave instance kid,
// or for r's current one when kid is "" (attesting r first if there is
// none).
func (c *Client) prepareAt(ctx context.Context, r *replica, method string, params any, replyKey *jose.JSONWebKey, kid string) (*Request, error) {
	gen := r.attestGen.Load()
	if kid == "" {
		if kid = c.target(r); kid == "" {
			if err := c.reattest(ctx, r, gen); err != nil {
				return nil, err
			}
			gen = r.attestGen.Load()
			if kid = c.target(r); kid == "" {
				return nil, fmt.Errorf("%w: no attested key to sign for", ErrAttestation)
			}
		}
	}
	return c.sign(r, method, params, replyKey, kid, gen)
}

// sign signs a request to r for the enclave instance kid.
func (c *Client) sign(r *replica, method string, params any, replyKey *jose.JSONWebKey, kid string, gen uint64) (*Request, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	body, err := envelope.SignRequest(c.creds, envelope.Outgoing{
		Method: method, Params: params, Audience: c.cfg.SignerID, Enclave: kid, IAT: c.cfg.Clock(), Nonce: nonce, ReplyKey: replyKey,
	})
	if err != nil {
		return nil, err
	}
	return &Request{method: method, body: body, replica: r, gen: gen}, nil
}

// Send posts req to the replica it was signed at and returns the parent's
// answer without verifying it. A replica that does not answer, or answers
// 503 itself, is marked down, so the next Prepare picks another.
func (c *Client) Send(ctx context.Context, req *Request) (*Answer, error) {
	if req == nil || req.body == nil || req.replica == nil {
		return nil, ErrNoRequest
	}
	r := req.replica
	r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	a, err := c.send(ctx, req)
	switch {
	case err != nil:
		c.judge(ctx, r, err, "")
	case a.ctype != "application/jose":
		c.judge(ctx, r, parentError(a.status, a.body), "")
	default:
		r.ok(c.cfg.Logger) // an answer in the enclave's form, whatever Open finds
	}
	return a, err
}

// send posts req to its replica.
func (c *Client) send(ctx context.Context, req *Request) (*Answer, error) {
	r := req.replica
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/"+req.method, bytes.NewReader(req.body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/jose")
	r.calls.Add(1)
	if req.retry {
		r.retries.Add(1)
	}
	body, status, ctype, err := c.do(r, hr, envelope.MaxResponse)
	if err != nil {
		return nil, err
	}
	return &Answer{status: status, ctype: ctype, body: body}, nil
}

// Open verifies that a answers req, signed by an attested enclave key, and
// decodes its result into result. It returns what Call would have: a
// refusal by the enclave as an *api.Error, one by the parent as a
// *ParentError.
//
// An answer wrong_enclave means the request reached another enclave
// instance than the one it was signed for; Call signs again for that
// instance, Open only reports it.
func (c *Client) Open(ctx context.Context, req *Request, a *Answer, result any) error {
	_, err := c.open(ctx, req, a, result)
	return err
}

// open is Open that also returns the kid of the key that signed the
// answer, once it verified.
func (c *Client) open(ctx context.Context, req *Request, a *Answer, result any) (string, error) {
	if req == nil || req.body == nil || req.replica == nil || a == nil {
		return "", ErrNoRequest
	}
	if a.ctype != "application/jose" {
		return "", parentError(a.status, a.body)
	}
	resp, err := envelope.VerifyResponse(a.body, req.body, c.key)
	if errors.Is(err, envelope.ErrUnknownKey) {
		// The enclave behind the replica restarted, or the parent routes
		// to another instance: attest it, then accept the response only
		// if its key is an attested one.
		if aerr := c.reattest(ctx, req.replica, req.gen); aerr != nil {
			return "", aerr
		}
		resp, err = envelope.VerifyResponse(a.body, req.body, c.key)
	}
	if err != nil {
		req.replica.refused.Add(1)
		if c.cfg.Logger != nil {
			c.cfg.Logger.Warn("client: answer refused", "replica", req.replica.name(), "method", req.method, "err", err)
		}
		return "", fmt.Errorf("%w: %w", ErrResponse, err)
	}
	if resp.Err != nil {
		return resp.KeyID, resp.Err
	}
	if result != nil {
		if err := strictjson.Decode(resp.Result, result, envelope.MaxResponse); err != nil {
			return resp.KeyID, fmt.Errorf("%w: result: %w", ErrResponse, err)
		}
	}
	return resp.KeyID, nil
}

// reattest attests r unless another attestation of r succeeded since gen
// was read.
func (c *Client) reattest(ctx context.Context, r *replica, gen uint64) error {
	r.attestMu.Lock()
	defer r.attestMu.Unlock()
	if r.attestGen.Load() != gen {
		return nil
	}
	_, _, err := c.attestAt(ctx, r)
	return err
}

// transportError is a request that got no HTTP answer. sent is false only
// when the transport reported that the request never got a connection, so
// no byte of it was written anywhere.
type transportError struct {
	err  error
	sent bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// do sends req to r and reads the answer, up to limit bytes. A request
// that got no answer is a *transportError, which says whether it may have
// left: it did not only when r's transport reports connections (an
// *http.Transport calls GotConn, in the goroutine that called Do, before
// it writes a byte of the request to any connection, and before Do
// returns) and none was got.
func (c *Client) do(r *replica, req *http.Request, limit int) ([]byte, int, string, error) {
	var gotConn atomic.Bool
	if r.traced {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(),
			&httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) }}))
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, 0, "", &transportError{err: err, sent: !r.traced || gotConn.Load()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, 0, "", &transportError{err: err, sent: true}
	}
	if len(body) > limit {
		return nil, 0, "", fmt.Errorf("%w: answer larger than %d bytes", ErrResponse, limit)
	}
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return body, resp.StatusCode, strings.ToLower(ctype), nil
}

func parentError(status int, body []byte) error {
	var e api.ErrorBody
	if err := strictjson.Decode(body, &e, 4096); err != nil {
		return &ParentError{Status: status, Code: "unknown", Message: "unparsable answer"}
	}
	return &ParentError{Status: status, Code: string(e.Error), Message: e.Message}
}

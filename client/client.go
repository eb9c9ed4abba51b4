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
	"mime"
	"net/http"
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
	// URL is the parent's base URL, e.g. https://127.0.0.1:8443.
	URL string
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
	// Clock is the client's time source (required).
	Clock func() time.Time
	// Transport, if set, replaces the HTTP transport (its TLS settings are
	// then the caller's responsibility).
	Transport http.RoundTripper
	// KeyLifetime is how long an attested enclave key is trusted after its
	// attestation; the client attests again before it signs for, or
	// accepts an answer from, an older one. Default DefaultKeyLifetime.
	KeyLifetime time.Duration
	// MaxKeys bounds the attested keys remembered (the oldest is forgotten
	// first). Default DefaultMaxKeys.
	MaxKeys int
}

// Defaults of Config.
const (
	// DefaultMaxAge bounds the age of an attestation document the client
	// accepts when the policy sets none.
	DefaultMaxAge = 5 * time.Minute
	// DefaultKeyLifetime is how long an attested key is trusted.
	DefaultKeyLifetime = time.Hour
	// DefaultMaxKeys bounds the attested keys a client remembers: a few
	// replicas and their restarts.
	DefaultMaxKeys = 16
)

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
)

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
}

// Client is safe for concurrent use.
type Client struct {
	cfg   Config
	http  *http.Client
	creds envelope.Credentials

	mu   sync.RWMutex
	keys map[string]*Attested
	// current is the kid requests are signed for: the instance attested
	// last, or the one that last refused a request as meant for another.
	current string
	// attestMu serialises attestation, and attestGen counts successful
	// ones, so a burst of answers from an unknown key attests once.
	attestMu  sync.Mutex
	attestGen atomic.Uint64
}

// New checks the configuration and returns a client. It does not contact
// the signer.
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
	if cfg.Policy.MaxAge == 0 {
		cfg.Policy.MaxAge = DefaultMaxAge
	}
	if cfg.KeyLifetime == 0 {
		cfg.KeyLifetime = DefaultKeyLifetime
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.KeyLifetime < 0 || cfg.MaxKeys < 1 {
		return nil, errors.New("client: KeyLifetime and MaxKeys must be positive")
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
	creds := envelope.Credentials{Leaf: cfg.Certificate.Certificate[0], Signer: signer}
	transport := cfg.Transport
	if transport == nil {
		transport = &http.Transport{
			TLSClientConfig: &tls.Config{
				MinVersion:   tls.VersionTLS13,
				RootCAs:      cfg.ServerCAs,
				Certificates: []tls.Certificate{cfg.Certificate},
			},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	return &Client{
		cfg:   cfg,
		http:  &http.Client{Transport: transport},
		creds: creds,
		keys:  map[string]*Attested{},
	}, nil
}

// Attest fetches an attestation document with a fresh nonce, verifies it
// and remembers the enclave key it binds.
func (c *Client) Attest(ctx context.Context) (*Attested, error) {
	_, a, err := c.attest(ctx)
	return a, err
}

// FetchAttestation is Attest that also returns the raw document.
func (c *Client) FetchAttestation(ctx context.Context) ([]byte, *Attested, error) {
	return c.attest(ctx)
}

func (c *Client) attest(ctx context.Context) ([]byte, *Attested, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL+"/v1/attestation?nonce="+hex.EncodeToString(nonce), nil)
	if err != nil {
		return nil, nil, err
	}
	body, status, ctype, err := c.do(req, attestation.MaxDocumentSize)
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
		Expires: c.cfg.Clock().Add(c.cfg.KeyLifetime)}
	c.remember(a)
	c.attestGen.Add(1)
	return body, a, nil
}

// remember keeps a as the current key, forgetting expired keys and, past
// MaxKeys, the ones that expire first.
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
	c.current = a.KeyID
}

// key returns the attested key kid while it is trusted.
func (c *Client) key(kid string) *ecdsa.PublicKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a, ok := c.keys[kid]; ok && c.cfg.Clock().Before(a.Expires) {
		return a.Key
	}
	return nil
}

// target is the kid to sign requests for, "" when there is no trusted one.
func (c *Client) target() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a, ok := c.keys[c.current]; ok && c.cfg.Clock().Before(a.Expires) {
		return a.KeyID
	}
	return ""
}

// retarget makes kid, an attested key, the one requests are signed for.
func (c *Client) retarget(kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[kid]; ok {
		c.current = kid
	}
}

// Call calls method ("v1/derive-address") with params and decodes the
// verified result into result. A refusal by the enclave is returned as an
// *api.Error.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.call(ctx, method, params, result, nil)
}

// changesState reports whether a second execution of method is not the
// first's answer again (a rotation twice is two epochs,
// api.Method.ChangesState): the client never signs one of them twice for
// one call.
func changesState(method string) bool {
	m, _ := api.Lookup(method)
	return m.ChangesState
}

func (c *Client) call(ctx context.Context, method string, params, result any, replyKey *jose.JSONWebKey) error {
	kid := ""
	if changesState(method) {
		// Attest now and sign for the instance that answers, and never
		// sign again for another one: a re-signed copy would leave the
		// first request valid at the instance it names, and a parent
		// could deliver both (one call, two rotations on two replicas).
		a, err := c.Attest(ctx)
		if err != nil {
			return err
		}
		kid = a.KeyID
	}
	req, err := c.prepare(ctx, method, params, replyKey, kid)
	if err != nil {
		return err
	}
	a, err := c.Send(ctx, req)
	if err != nil {
		return err
	}
	kid, err = c.open(ctx, req, a, result)
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.CodeWrongEnclave || changesState(method) {
		return err
	}
	// The request reached another instance than the one it was signed for
	// (the enclave restarted, or the parent routes to another replica).
	// That instance's refusal is signed by a key attested by now: sign
	// again, once, for it.
	c.retarget(kid)
	if req, err = c.prepare(ctx, method, params, replyKey, kid); err != nil {
		return err
	}
	if a, err = c.Send(ctx, req); err != nil {
		return err
	}
	_, err = c.open(ctx, req, a, result)
	return err
}

// A Request is a signed request, ready to send. It is valid for the
// enclave's freshness window after it was made, only at the enclave
// instance the client had attested when it was made (another answers
// wrong_enclave), and can be sent once: the enclave refuses its nonce the
// second time.
type Request struct {
	method string
	body   []byte
	gen    uint64 // the attestation generation when it was made
}

// An Answer is what the parent returned for a Request, not yet verified.
type Answer struct {
	status int
	ctype  string
	body   []byte
}

// Prepare signs a request to call method with params, attesting first if
// the client has not. Prepare, Send and Open are Call in three steps, for
// callers that sign ahead or verify later (signer-bench signs before its
// timed window and verifies every answer after it).
func (c *Client) Prepare(ctx context.Context, method string, params any) (*Request, error) {
	return c.prepare(ctx, method, params, nil, "")
}

// prepare signs a request for the enclave instance kid, or for the current
// one when kid is "" (attesting first if there is none).
func (c *Client) prepare(ctx context.Context, method string, params any, replyKey *jose.JSONWebKey, kid string) (*Request, error) {
	gen := c.attestGen.Load()
	if kid == "" {
		if kid = c.target(); kid == "" {
			if err := c.reattest(ctx, gen); err != nil {
				return nil, err
			}
			gen = c.attestGen.Load()
			if kid = c.target(); kid == "" {
				return nil, fmt.Errorf("%w: no attested key to sign for", ErrAttestation)
			}
		}
	}
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
	return &Request{method: method, body: body, gen: gen}, nil
}

// Send posts req and returns the parent's answer without verifying it.
func (c *Client) Send(ctx context.Context, req *Request) (*Answer, error) {
	if req == nil || req.body == nil {
		return nil, ErrNoRequest
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+"/"+req.method, bytes.NewReader(req.body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/jose")
	body, status, ctype, err := c.do(hr, envelope.MaxResponse)
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
	if req == nil || req.body == nil || a == nil {
		return "", ErrNoRequest
	}
	if a.ctype != "application/jose" {
		return "", parentError(a.status, a.body)
	}
	resp, err := envelope.VerifyResponse(a.body, req.body, c.key)
	if errors.Is(err, envelope.ErrUnknownKey) {
		// The enclave restarted or another replica answered: attest, then
		// accept the response only if its key is the attested one.
		if aerr := c.reattest(ctx, req.gen); aerr != nil {
			return "", aerr
		}
		resp, err = envelope.VerifyResponse(a.body, req.body, c.key)
	}
	if err != nil {
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

// reattest attests unless another attestation succeeded since gen was read.
func (c *Client) reattest(ctx context.Context, gen uint64) error {
	c.attestMu.Lock()
	defer c.attestMu.Unlock()
	if c.attestGen.Load() != gen {
		return nil
	}
	_, _, err := c.attest(ctx)
	return err
}

func (c *Client) do(req *http.Request, limit int) ([]byte, int, string, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, 0, "", err
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

package envelope

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/bounded"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

// HeaderThumbprint is the protected-header parameter naming the caller's
// certificate: base64url(SHA-256(leaf DER)).
const HeaderThumbprint = "x5t#S256"

var b64 = base64.RawURLEncoding

// wireRequest is the request payload as it is signed.
type wireRequest struct {
	Method   string          `json:"method"`
	Params   json.RawMessage `json:"params"`
	Nonce    string          `json:"nonce"`
	IAT      int64           `json:"iat"`
	Aud      string          `json:"aud"`
	Enclave  string          `json:"enclave"`
	ReplyKey json.RawMessage `json:"reply_key,omitempty"`
}

// Credentials are a caller's TLS client certificate and its key.
type Credentials struct {
	// Signer is the certificate's private key: *ecdsa.PrivateKey (P-256)
	// or ed25519.PrivateKey.
	Signer crypto.Signer
	// Leaf is the certificate's DER.
	Leaf []byte
}

// Outgoing is a request as a client builds it.
type Outgoing struct {
	Method   string // "v1/derive-address", ...
	Params   any
	Audience string
	// Enclave is the kid of the attested enclave instance the request is
	// for (its per-boot response key): every other instance refuses it.
	Enclave string
	IAT     time.Time
	Nonce   []byte
	// ReplyKey is the P-256 public JWK that secret results are encrypted
	// to; nil for methods that return none.
	ReplyKey *jose.JSONWebKey
}

// SignRequest returns the compact JWS of a request.
func SignRequest(c Credentials, out Outgoing) ([]byte, error) {
	var alg jose.SignatureAlgorithm
	var key any
	switch k := c.Signer.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("envelope: ECDSA caller keys must be P-256")
		}
		alg, key = jose.ES256, k
	case ed25519.PrivateKey:
		alg, key = jose.EdDSA, k
	default:
		return nil, fmt.Errorf("envelope: unsupported caller key %T", c.Signer)
	}
	params, err := json.Marshal(out.Params)
	if err != nil {
		return nil, fmt.Errorf("envelope: encoding params: %w", err)
	}
	w := wireRequest{Method: out.Method, Params: params, Nonce: b64.EncodeToString(out.Nonce), IAT: out.IAT.Unix(), Aud: out.Audience, Enclave: out.Enclave}
	if out.ReplyKey != nil {
		if w.ReplyKey, err = out.ReplyKey.MarshalJSON(); err != nil {
			return nil, fmt.Errorf("envelope: encoding reply key: %w", err)
		}
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	thumb := sha256.Sum256(c.Leaf)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithHeader(HeaderThumbprint, b64.EncodeToString(thumb[:])))
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("envelope: signing request: %w", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// Caller is an authenticated caller.
type Caller struct {
	// Role is the last segment of the certificate's SPIFFE ID.
	Role string
	// ID is the SPIFFE ID, spiffe://<trust domain>/<role>.
	ID string
	// Thumbprint is SHA-256 of the leaf certificate.
	Thumbprint [32]byte
}

// Verified is a request that passed every check.
type Verified struct {
	Caller   Caller
	Method   string
	Params   json.RawMessage
	ReplyKey *jose.JSONWebKey
	// Hash is SHA-256 of the request bytes, named by the response.
	Hash [32]byte
}

// Verifier authenticates requests inside the enclave.
type Verifier struct {
	// SignerID is this deployment's name; a request's aud must equal it.
	SignerID string
	// CallerCA verifies the forwarded certificate chains.
	CallerCA *x509.CertPool
	// TrustDomain is the SPIFFE trust domain of caller certificates.
	TrustDomain string
	// Window bounds |iat - now|.
	Window time.Duration
	// Clock is the enclave's time source.
	Clock func() time.Time
	// Instance is this enclave instance's kid (its per-boot response key);
	// a request's enclave must equal it.
	Instance string
	// Roles, if set, are the roles the configuration names; a caller of
	// another role is refused before its nonce is recorded.
	Roles map[string]bool
	// Replay remembers used nonces.
	Replay *Replay

	chainsOnce sync.Once
	chainCache *bounded.Map[[32]byte, chainEntry]
}

// chains is the bounded cache of verified caller chains.
func (v *Verifier) chains() *bounded.Map[[32]byte, chainEntry] {
	v.chainsOnce.Do(func() { v.chainCache = bounded.New[[32]byte, chainEntry](chainCacheEntries) })
	return v.chainCache
}

var roleName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Verify authenticates a request received on route ("v1/derive-address")
// with the certificate chain the parent forwarded. Every failure is an
// *api.Error with the code of the rule it breaks. The nonce is recorded only
// once everything else has passed, so unauthenticated traffic cannot fill
// the replay cache.
func (v *Verifier) Verify(route string, body []byte, chain [][]byte) (*Verified, error) {
	now := v.Clock()
	if len(body) == 0 || len(body) > MaxRequest {
		return nil, api.Errorf(api.CodeBadRequest, "request of %d bytes, want 1..%d", len(body), MaxRequest)
	}
	parts := bytes.Split(body, []byte{'.'})
	if len(parts) != 3 {
		return nil, api.Errorf(api.CodeBadRequest, "request is not a compact JWS")
	}
	headerJSON, err := b64.DecodeString(string(parts[0]))
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "JWS header is not base64url")
	}
	var header struct {
		Alg        string `json:"alg"`
		Thumbprint string `json:"x5t#S256"`
	}
	// Until the caller's signature verifies, every byte is the parent's:
	// refusals (which the enclave signs) name the rule, never the bytes.
	if err := strictjson.Decode(headerJSON, &header, 1024); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "JWS header is not a strict JSON object of alg and x5t#S256")
	}
	if header.Alg != string(jose.ES256) && header.Alg != string(jose.EdDSA) {
		return nil, api.Errorf(api.CodeUnauthenticated, "alg: want ES256 or EdDSA")
	}
	thumb, err := b64.DecodeString(header.Thumbprint)
	if err != nil || len(thumb) != sha256.Size {
		return nil, api.Errorf(api.CodeUnauthenticated, "x5t#S256 is not a base64url SHA-256")
	}
	if len(chain) == 0 {
		return nil, api.Errorf(api.CodeUnauthenticated, "no client certificate forwarded")
	}
	if leafThumb := sha256.Sum256(chain[0]); !bytes.Equal(thumb, leafThumb[:]) {
		return nil, api.Errorf(api.CodeUnauthenticated, "x5t#S256 does not name the presented certificate")
	}
	caller, leafKey, err := v.verifyChain(chain, now)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "JWS: %v", err)
	}
	switch k := leafKey.(type) {
	case *ecdsa.PublicKey:
		if header.Alg != string(jose.ES256) || k.Curve != elliptic.P256() {
			return nil, api.Errorf(api.CodeUnauthenticated, "alg %s does not fit the certificate key", header.Alg)
		}
	case ed25519.PublicKey:
		if header.Alg != string(jose.EdDSA) {
			return nil, api.Errorf(api.CodeUnauthenticated, "alg %s does not fit the certificate key", header.Alg)
		}
	default:
		return nil, api.Errorf(api.CodeUnauthenticated, "certificate key %T is not ECDSA P-256 or Ed25519", leafKey)
	}
	payload, err := jws.Verify(leafKey)
	if err != nil {
		return nil, api.Errorf(api.CodeUnauthenticated, "request signature does not verify")
	}
	var w wireRequest
	if err := strictjson.Decode(payload, &w, MaxRequest); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "request payload: %v", err)
	}
	if w.Aud != v.SignerID {
		return nil, api.Errorf(api.CodeWrongAudience, "aud %q is not this signer", text.Truncate(w.Aud))
	}
	if w.Method != route {
		// route is the parent's; method, signed, is the caller's.
		return nil, api.Errorf(api.CodeBadRequest, "method %q was signed for another route than the one called", text.Truncate(w.Method))
	}
	if w.Enclave == "" {
		return nil, api.Errorf(api.CodeBadRequest, "request names no enclave instance")
	}
	if w.Enclave != v.Instance {
		// Signed for another replica, or for this one before it restarted:
		// the caller attests again and signs for the instance it reaches.
		// Nothing is recorded, so the refusal costs this instance nothing.
		return nil, api.Errorf(api.CodeWrongEnclave, "request is for enclave %q, this is %q", text.Truncate(w.Enclave), v.Instance)
	}
	if len(w.Params) == 0 || w.Params[0] != '{' {
		return nil, api.Errorf(api.CodeBadRequest, "params must be an object")
	}
	iat := time.Unix(w.IAT, 0)
	if d := now.Sub(iat); d > v.Window || d < -v.Window {
		return nil, api.Errorf(api.CodeStale, "iat is %s from the enclave's clock, window ±%s", d.Round(time.Second), v.Window)
	}
	nonce, err := b64.DecodeString(w.Nonce)
	if err != nil || len(nonce) < MinNonce || len(nonce) > MaxNonce {
		return nil, api.Errorf(api.CodeBadRequest, "nonce must be base64url of %d..%d bytes", MinNonce, MaxNonce)
	}
	var replyKey *jose.JSONWebKey
	if len(w.ReplyKey) != 0 {
		replyKey, err = ParseReplyKey(w.ReplyKey)
		if err != nil {
			return nil, err
		}
	}
	if v.Roles != nil && !v.Roles[caller.Role] {
		// Refused before its nonce takes room: a role the configuration
		// does not name has no share of the replay cache.
		return nil, api.Errorf(api.CodeUnauthorized, "role %q is not configured", caller.Role)
	}
	sum := sha256.Sum256(append(caller.Thumbprint[:], nonce...))
	fresh, full := v.Replay.Use(caller.Role, caller.Thumbprint, replayKeyOf(sum[:8]), now)
	switch full {
	case CallerFull:
		return nil, api.Errorf(api.CodeOverloaded, "this caller's share of the replay cache is full")
	case RoleFull:
		return nil, api.Errorf(api.CodeOverloaded, "the share of the replay cache of role %q is full", caller.Role)
	case CacheFull:
		return nil, api.Errorf(api.CodeOverloaded, "replay cache full")
	}
	if !fresh {
		return nil, api.Errorf(api.CodeReplayed, "nonce already used")
	}
	return &Verified{Caller: caller, Method: w.Method, Params: w.Params, ReplyKey: replyKey, Hash: sha256.Sum256(body)}, nil
}

// ParseReplyKey accepts only a public P-256 EC JWK.
func ParseReplyKey(raw []byte) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "reply_key is not a JWK")
	}
	pub, ok := k.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() || !k.IsPublic() {
		return nil, api.Errorf(api.CodeBadRequest, "reply_key must be a public P-256 EC key")
	}
	return &k, nil
}

// verifyChain verifies the forwarded chain against the caller CA and
// extracts the caller's role. Verified chains are cached (bounded) by the
// hash of their bytes, and re-checked against the clock on every hit.
func (v *Verifier) verifyChain(chain [][]byte, now time.Time) (Caller, crypto.PublicKey, error) {
	h := sha256.New()
	for _, c := range chain {
		sum := sha256.Sum256(c)
		h.Write(sum[:])
	}
	var key [32]byte
	h.Sum(key[:0])
	if e, ok := v.chains().Get(key); ok && !now.Before(e.notBefore) && !now.After(e.notAfter) {
		return e.caller, e.leafKey, nil
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Caller{}, nil, api.Errorf(api.CodeUnauthenticated, "forwarded certificate %d does not parse", i)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: v.CallerCA, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		// x509's errors can name certificates of the forwarded chain,
		// which the parent chose: say which rule, not what it said.
		return Caller{}, nil, api.Errorf(api.CodeUnauthenticated, "client certificate not issued by the caller CA: %s", chainRule(err))
	}
	caller, err := v.callerOf(certs[0])
	if err != nil {
		return Caller{}, nil, err
	}
	e := chainEntry{caller: caller, leafKey: certs[0].PublicKey, notBefore: certs[0].NotBefore, notAfter: certs[0].NotAfter}
	for _, c := range chains[0] {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	v.chains().Put(key, e)
	return caller, e.leafKey, nil
}

// callerOf is the caller a verified leaf certificate names: an X509-SVID
// carries exactly one URI SAN, its SPIFFE ID, which must be exactly
// spiffe://<trust domain>/<role>.
func (v *Verifier) callerOf(leaf *x509.Certificate) (Caller, error) {
	uris, err := uriSANs(leaf)
	if err != nil {
		return Caller{}, api.Errorf(api.CodeUnauthenticated, "client certificate: %v", err)
	}
	if len(uris) != 1 {
		return Caller{}, api.Errorf(api.CodeUnauthenticated, "client certificate has %d URI SANs, want one SPIFFE ID", len(uris))
	}
	id := uris[0]
	td, path, err := parseSPIFFEID(id)
	if err != nil {
		return Caller{}, api.Errorf(api.CodeUnauthenticated, "client certificate's URI SAN %q: %v", text.Truncate(id), err)
	}
	if td != v.TrustDomain || len(path) != 1 || !roleName.MatchString(path[0]) {
		return Caller{}, api.Errorf(api.CodeUnauthenticated, "SPIFFE ID %q is not spiffe://%s/<role>", text.Truncate(id), v.TrustDomain)
	}
	return Caller{Role: path[0], ID: id, Thumbprint: sha256.Sum256(leaf.Raw)}, nil
}

type chainEntry struct {
	caller              Caller
	leafKey             crypto.PublicKey
	notBefore, notAfter time.Time
}

// chainRule names the rule a chain verification error breaks, in the
// enclave's words.
func chainRule(err error) string {
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknown):
		return "no chain to the caller CA"
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			return "a certificate is expired or not yet valid"
		case x509.IncompatibleUsage:
			return "a certificate is not for client authentication"
		case x509.CANotAuthorizedForThisName, x509.CANotAuthorizedForExtKeyUsage:
			return "a CA's constraints exclude the certificate"
		case x509.NotAuthorizedToSign:
			return "an intermediate is not a CA"
		case x509.TooManyIntermediates:
			return "the chain is too long"
		}
		return "a certificate is invalid"
	}
	return "the chain does not verify"
}

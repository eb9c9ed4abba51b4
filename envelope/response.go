package envelope

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

// wireResponse is the response payload.
type wireResponse struct {
	Req    string          `json:"req"`
	IAT    int64           `json:"iat"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
}

type wireError struct {
	Code    api.Code `json:"code"`
	Message string   `json:"message"`
}

// KeyID is base64url(SHA-256(SPKI DER)), the "kid" of an enclave key.
func KeyID(spki []byte) string {
	sum := sha256.Sum256(spki)
	return b64.EncodeToString(sum[:])
}

// ResponseSigner signs responses with the enclave's per-boot key.
type ResponseSigner struct {
	spki   []byte
	kid    string
	signer jose.Signer
}

// NewResponseSigner wraps a P-256 key.
func NewResponseSigner(key *ecdsa.PrivateKey) (*ResponseSigner, error) {
	if key.Curve != elliptic.P256() {
		return nil, errors.New("envelope: response key must be P-256")
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	kid := KeyID(spki)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		return nil, err
	}
	return &ResponseSigner{spki: spki, kid: kid, signer: signer}, nil
}

// SPKI is the DER SubjectPublicKeyInfo of the key: the attestation
// document's public_key.
func (s *ResponseSigner) SPKI() []byte { return s.spki }

// KeyID is the key's kid.
func (s *ResponseSigner) KeyID() string { return s.kid }

// Sign signs the answer to the request bytes req: result (JSON-encoded) or,
// when e is not nil, the error.
func (s *ResponseSigner) Sign(req []byte, iat time.Time, result any, e *api.Error) ([]byte, error) {
	sum := sha256.Sum256(req)
	w := wireResponse{Req: b64.EncodeToString(sum[:]), IAT: iat.Unix()}
	if e != nil {
		w.Error = &wireError{Code: e.Code, Message: e.Message}
	} else {
		r, err := json.Marshal(result)
		if err != nil {
			return nil, fmt.Errorf("envelope: encoding result: %w", err)
		}
		w.Result = r
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("envelope: signing response: %w", err)
	}
	out, err := jws.CompactSerialize()
	return []byte(out), err
}

// Errors of VerifyResponse.
var (
	// ErrUnknownKey: the response is signed by a key the client has not
	// seen attested; attest again before trusting anything from it.
	ErrUnknownKey = errors.New("envelope: response signed by an unattested key")
	// ErrResponse: the response is malformed, its signature does not
	// verify, or it answers another request.
	ErrResponse = errors.New("envelope: invalid response")
)

// Response is a verified response: Result, or Err when the enclave refused.
type Response struct {
	KeyID string
	// IAT is the enclave's clock when it signed (absent reads as the Unix
	// epoch). It is informational: freshness comes from req, which binds
	// the answer to this request, so VerifyResponse compares it with no
	// clock.
	IAT    time.Time
	Result json.RawMessage
	Err    *api.Error
}

// VerifyResponse checks a response against the request bytes it must answer,
// with key looking up attested enclave keys by kid.
func VerifyResponse(body, req []byte, key func(kid string) *ecdsa.PublicKey) (*Response, error) {
	if len(body) == 0 || len(body) > MaxResponse {
		return nil, fmt.Errorf("%w: %d bytes", ErrResponse, len(body))
	}
	jws, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrResponse, err)
	}
	kid := jws.Signatures[0].Protected.KeyID
	pub := key(kid)
	if pub == nil {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, text.Truncate(kid))
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: signature does not verify", ErrResponse)
	}
	var w wireResponse
	if err := strictjson.Decode(payload, &w, MaxResponse); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrResponse, err)
	}
	sum := sha256.Sum256(req)
	if !bytes.Equal([]byte(w.Req), []byte(b64.EncodeToString(sum[:]))) {
		return nil, fmt.Errorf("%w: it answers another request", ErrResponse)
	}
	if (w.Error == nil) == (w.Result == nil) {
		return nil, fmt.Errorf("%w: want exactly one of result and error", ErrResponse)
	}
	r := &Response{KeyID: kid, IAT: time.Unix(w.IAT, 0), Result: w.Result}
	if w.Error != nil {
		r.Err = &api.Error{Code: w.Error.Code, Message: w.Error.Message}
	}
	return r, nil
}

// Package service holds the enclave's methods: one handler per method, each
// with a request and a response struct, each checking its input completely
// before it derives or signs anything.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// MaxParams bounds a method's params.
const MaxParams = 64 << 10

// Request is an authenticated call as a handler sees it.
type Request struct {
	Caller   envelope.Caller
	Params   json.RawMessage
	ReplyKey *jose.JSONWebKey
}

// Handler answers one method. It returns the result to sign or an error,
// which is an *envelope.Error for every refusal.
type Handler func(ctx context.Context, r *Request) (any, error)

// Service is the set of methods over one keyring.
type Service struct {
	keys   *keyring.Keyring
	policy policy
	clock  func() time.Time
}

// Options build a Service.
type Options struct {
	Keys *keyring.Keyring
	// Policy restricts what is signed; nil allows everything.
	Policy *config.Policy
	// Clock is the enclave's time source.
	Clock func() time.Time
}

// New returns the service.
func New(o Options) *Service {
	return &Service{keys: o.Keys, policy: newPolicy(o.Policy), clock: o.Clock}
}

// Methods returns the handlers by route: the typed surface under "v1/" and,
// when dev is set, the compatibility surface under "dev/".
func (s *Service) Methods(dev bool) map[string]Handler {
	m := map[string]Handler{
		"v1/derive-address":       s.deriveAddress,
		"v1/derive-cred-kek":      s.deriveCredKEK,
		"v1/sign/siwe":            s.signSIWE,
		"v1/sign/typed-data":      s.signTypedData,
		"v1/sign/audit-row":       s.signAuditRow,
		"v1/verify/k10-sig":       s.verifyK10,
		"v1/verify/k11-assertion": s.verifyK11,
	}
	if dev {
		m["dev/derive-address"] = s.devDeriveAddress
		m["dev/sign-message"] = s.devSignMessage
		m["dev/sign-typed-data"] = s.devSignTypedData
		m["dev/derive-device"] = s.devDeriveDevice
		m["dev/sign-device-cap-pop"] = s.devSignDeviceCapPop
	}
	return m
}

// AllMethods lists every route a configuration may name.
func AllMethods() map[string]bool {
	out := map[string]bool{}
	for name := range New(Options{}).Methods(true) {
		out[name] = true
	}
	return out
}

// decode decodes params strictly into v.
func decode(r *Request, v any) error { return DecodeParams(r.Params, v) }

// DecodeParams decodes a method's params strictly into v; a refusal is
// bad_request. The key methods (enclave/custody) decode with it too.
func DecodeParams(params json.RawMessage, v any) error {
	if err := strictjson.Decode(params, v, MaxParams); err != nil {
		return envelope.Errorf(envelope.CodeBadRequest, "params: %v", err)
	}
	return nil
}

// keyError maps keyring errors to wire errors.
func keyError(err error) error {
	switch {
	case errors.Is(err, keyring.ErrEmpty):
		return envelope.Errorf(envelope.CodeSignerDisabled, "no keys loaded")
	case errors.Is(err, keyring.ErrUnknownEpoch):
		return envelope.Errorf(envelope.CodeUnknownEpoch, "%v", err)
	}
	return err
}

func parseOmni(s string) (keyring.Omni, error) {
	o, err := keyring.ParseOmni(s)
	if err != nil {
		return o, envelope.Errorf(envelope.CodeInvalidOmni, "%v", err)
	}
	return o, nil
}

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

	"github.com/nitro-signer/nitro-signer/api"
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
// which is an *api.Error for every refusal.
type Handler func(ctx context.Context, r *Request) (any, error)

// Service is the set of methods over one keyring.
type Service struct {
	keys   *keyring.Keyring
	policy policy
	clock  func() time.Time
	oidc   *config.OIDC
	sts    *config.STS
	// exchanger reaches STS for v1/sts-credentials; exchanges holds a
	// slot per exchange in flight.
	exchanger Exchanger
	exchanges chan struct{}
}

// Options build a Service.
type Options struct {
	Keys *keyring.Keyring
	// Policy restricts what is signed; nil allows everything.
	Policy *config.Policy
	// Clock is the enclave's time source.
	Clock func() time.Time
	// OIDC, if set, serves the OIDC issuer's methods
	// (v1/oidc/discovery, v1/oidc-token).
	OIDC *config.OIDC
	// STS, if set (with OIDC), serves v1/sts-credentials, which calls STS
	// through Exchanger.
	STS       *config.STS
	Exchanger Exchanger
}

// New returns the service.
func New(o Options) *Service {
	return &Service{keys: o.Keys, policy: newPolicy(o.Policy), clock: o.Clock, oidc: o.OIDC, sts: o.STS, exchanger: o.Exchanger,
		exchanges: make(chan struct{}, MaxExchanges)}
}

// Methods returns the handlers by route: the typed surface under "v1/" and,
// when dev is set, the compatibility surface under "dev/". The OIDC methods
// are in it when the service has an OIDC configuration, and
// v1/sts-credentials when it also has an STS one.
func (s *Service) Methods(dev bool) map[string]Handler {
	m := Table(
		Bind(api.DeriveAddress, s.deriveAddress),
		Bind(api.DeriveCredentialKEK, s.deriveCredentialKEK),
		Bind(api.SignSIWE, s.signSIWE),
		Bind(api.SignTypedData, s.signTypedData),
		Bind(api.SignAuditRow, s.signAuditRow),
		Bind(api.VerifyDeviceSignature, s.verifyDeviceSignature),
		Bind(api.VerifyWebAuthn, s.verifyWebAuthn),
	)
	if s.oidc != nil {
		Merge(m, Table(
			Bind(api.OIDCDiscovery, s.oidcDiscovery),
			Bind(api.OIDCToken, s.oidcToken),
		))
		if s.sts != nil {
			Merge(m, Table(Bind(api.STSCredentials, s.stsCredentials)))
		}
	}
	if dev {
		Merge(m, Table(
			Bind(api.DevDeriveAddress, s.devDeriveAddress),
			Bind(api.DevSignMessage, s.devSignMessage),
			Bind(api.DevSignTypedData, s.devSignTypedData),
			Bind(api.DevDeriveDevice, s.devDeriveDevice),
			Bind(api.DevSignDeviceCapPop, s.devSignDeviceCapPop),
		))
	}
	return m
}

// AllMethods lists every route a configuration may name.
func AllMethods() map[string]bool {
	out := map[string]bool{}
	for name := range New(Options{OIDC: &config.OIDC{}, STS: &config.STS{}}).Methods(true) {
		out[name] = true
	}
	return out
}

// Binding is a route with its handler, made only by Bind.
type Binding struct {
	route   string
	handler Handler
}

// Bind binds a typed handler to method m: the one place a method's params
// are decoded. The params are decoded strictly into a P (a refusal is
// bad_request, and h is not called); h's *R is the result to sign. Since
// the client calls the same api.Method, the two sides cannot disagree on
// either type.
func Bind[P, R any](m api.Method[P, R], h func(ctx context.Context, r *Request, p *P) (*R, error)) Binding {
	return Binding{route: m.Route, handler: func(ctx context.Context, r *Request) (any, error) {
		var p P
		if err := DecodeParams(r.Params, &p); err != nil {
			return nil, err
		}
		res, err := h(ctx, r, &p)
		switch {
		case err != nil:
			return nil, err
		case res == nil:
			// A result of null is no answer a client can use.
			return nil, api.Errorf(api.CodeInternal, "%s answered nothing", m.Route)
		}
		return res, nil
	}}
}

// Table is bindings by route. A route bound twice is a bug in the
// enclave's wiring, found when the table is built at start.
func Table(bs ...Binding) map[string]Handler {
	m := make(map[string]Handler, len(bs))
	for _, b := range bs {
		if _, dup := m[b.route]; dup {
			panic("service: route " + b.route + " bound twice")
		}
		m[b.route] = b.handler
	}
	return m
}

// Merge adds the handlers of from to into; a route in both is a bug in the
// enclave's wiring.
func Merge(into, from map[string]Handler) {
	for route, h := range from {
		if _, dup := into[route]; dup {
			panic("service: route " + route + " served twice")
		}
		into[route] = h
	}
}

// DecodeParams decodes a method's params strictly into v; a refusal is
// bad_request.
func DecodeParams(params json.RawMessage, v any) error {
	if err := strictjson.Decode(params, v, MaxParams); err != nil {
		return api.Errorf(api.CodeBadRequest, "params: %v", err)
	}
	return nil
}

// keyError maps keyring errors to wire errors.
func keyError(err error) error {
	switch {
	case errors.Is(err, keyring.ErrEmpty):
		return api.Errorf(api.CodeSignerDisabled, "no keys loaded")
	case errors.Is(err, keyring.ErrUnknownEpoch):
		return api.Errorf(api.CodeUnknownEpoch, "%v", err)
	}
	return err
}

func parseOmni(s string) (keyring.Omni, error) {
	o, err := keyring.ParseOmni(s)
	if err != nil {
		return o, api.Errorf(api.CodeInvalidOmni, "%v", err)
	}
	return o, nil
}

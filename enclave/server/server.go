// Package server is the enclave's request path: it answers channel calls by
// attesting, reporting readiness, or authenticating an envelope, checking the
// caller's role, running the method and signing the response.
package server

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/recovered"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

// Attestation nonce bounds (bytes).
const (
	minAttestNonce = 16
	maxAttestNonce = 64
)

// Options build a Server.
type Options struct {
	Config *config.Config
	NSM    nsm.Module
	Keys   *keyring.Keyring
	Clock  func() time.Time
	Logger *slog.Logger
	// Sealer and Store keep the keyring over time; without them the
	// keyring stays as loaded and the key methods that change it refuse.
	Sealer seal.Sealer
	Store  custody.Store
	// PeerRoots are the roots a peer's attestation must chain to; nil
	// means the AWS root.
	PeerRoots []*x509.Certificate
	// STS reaches AWS STS for v1/sts-credentials (enclave/sts over the
	// parent's egress); required when the configuration has an sts member.
	STS service.Exchanger
}

// Server answers channel calls. It is a channel.Handler.
type Server struct {
	cfg      *config.Config
	nsm      nsm.Module
	keys     *keyring.Keyring
	clock    func() time.Time
	log      *slog.Logger
	verifier *envelope.Verifier
	signer   *envelope.ResponseSigner
	x25519   *ecdh.PrivateKey
	methods  map[string]service.Handler
	custody  *custody.Custody
	// panics counts the calls recovered from a panic since boot; the
	// readiness reply reports it, and the parent exports it.
	panics atomic.Uint64
}

var _ channel.Handler = (*Server)(nil)

// New creates the per-boot keys from the NSM's randomness mixed with the
// system's, and the request path.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.NSM == nil || o.Keys == nil || o.Clock == nil {
		return nil, errors.New("server: config, NSM, keyring and clock are required")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	methods := service.New(service.Options{Keys: o.Keys, Policy: &o.Config.Policy, Clock: o.Clock, OIDC: o.Config.OIDC,
		STS: o.Config.STS, Exchanger: o.STS,
	}).Methods(o.Config.DevSurface)
	if o.Config.STS != nil && o.STS == nil {
		return nil, errors.New("server: the configuration has an sts member but no way to reach STS (--egress)")
	}
	if err := o.Config.CheckMethods(AllMethods()); err != nil {
		return nil, err
	}
	pcrs := map[int][]byte{}
	for i := range 3 {
		p, err := o.NSM.DescribePCR(i)
		if err != nil {
			return nil, fmt.Errorf("server: describing PCR%d: %w", i, err)
		}
		pcrs[i] = p.Value
	}
	// The per-boot keys come from crypto/rand: Go 1.26 key generation reads
	// the kernel's CSPRNG whatever reader it is given, and inside an
	// enclave the kernel's pool is fed by the NSM (nsm-hwrng). The NSM must
	// answer before the enclave serves.
	var probe [32]byte
	if _, err := io.ReadFull(o.NSM, probe[:]); err != nil {
		return nil, fmt.Errorf("server: NSM randomness: %w", err)
	}
	signKey, err := ecdsa.GenerateKey(elliptic.P256(), nil)
	if err != nil {
		return nil, err
	}
	signer, err := envelope.NewResponseSigner(signKey)
	if err != nil {
		return nil, err
	}
	x, err := ecdh.X25519().GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: o.Config, nsm: o.NSM, keys: o.Keys, clock: o.Clock, log: logger,
		verifier: &envelope.Verifier{
			SignerID: o.Config.SignerID, CallerCA: o.Config.CallerPool, TrustDomain: o.Config.TrustDomain,
			Window: o.Config.Window, Clock: o.Clock, Instance: signer.KeyID(),
			Roles: roleSet(o.Config.Roles),
			Replay: envelope.NewReplay(o.Config.Window, o.Config.Limits.ReplayEntries,
				o.Config.Limits.ReplayRoleShare, o.Config.Limits.ReplayCallerShare, o.Clock()),
		},
		signer: signer, x25519: x, methods: methods,
	}
	s.custody = custody.New(custody.Options{
		Keys: o.Keys, SignerID: o.Config.SignerID, Sealer: o.Sealer, Store: o.Store, X25519: x,
		Attest: func(nonce []byte) ([]byte, error) {
			ud, err := s.UserData()
			if err != nil {
				return nil, err
			}
			return o.NSM.Attest(nsm.AttestRequest{UserData: ud, Nonce: nonce, PublicKey: signer.SPKI()})
		},
		Signer: signKey, ConfigSHA256: o.Config.Hash[:],
		Random: o.NSM, Peers: custody.PeerPolicy{Roots: o.PeerRoots, PCRs: pcrs, Releases: o.Config.PeerMeasurements()}, Clock: o.Clock, Logger: logger,
	})
	service.Merge(methods, s.custody.Methods())
	return s, nil
}

// AllMethods lists every route a configuration may name: the service's
// methods and the key methods.
func AllMethods() map[string]bool {
	out := service.AllMethods()
	for route := range (&custody.Custody{}).Methods() {
		out[route] = true
	}
	return out
}

// Custody is the keeper of the keyring: unsealing at boot, import,
// rotation and peer copy.
func (s *Server) Custody() *custody.Custody { return s.custody }

// KeyID is the per-boot signing key's kid.
func (s *Server) KeyID() string { return s.signer.KeyID() }

// Handle answers one channel call. A call that panics is answered with a
// signed internal error (unsigned outside the envelope: attestation,
// readiness), logged with its route and stack and counted; one request
// cannot take the enclave, its keyring and its replay cache down.
func (s *Server) Handle(ctx context.Context, call *channel.Call) (reply channel.Reply) {
	defer func() {
		if v := recover(); v != nil {
			reply = s.recover(call, v)
		}
	}()
	switch call.Route {
	case channel.RouteAttestation:
		return s.attest(call.Body)
	case channel.RouteReady:
		return s.ready()
	}
	return s.method(ctx, call)
}

// recover answers a call that panicked. The log line names the route, what
// panicked (a runtime error's message or only the value's type) and the
// stack without argument words: never the params, the payload or a key.
func (s *Server) recover(call *channel.Call, v any) channel.Reply {
	n := s.panics.Add(1)
	s.log.Error("call panicked", "route", text.Truncate(call.Route), "panic", recovered.Value(v),
		"stack", recovered.Stack(), "panics_since_boot", n)
	e := api.Errorf(api.CodeInternal, "internal error")
	switch call.Route {
	case channel.RouteAttestation, channel.RouteReady:
		return plainError(e)
	}
	return s.refuse(call, strings.HasPrefix(call.Route, "dev/"), e)
}

func (s *Server) attest(nonce []byte) channel.Reply {
	if len(nonce) < minAttestNonce || len(nonce) > maxAttestNonce {
		return plainError(api.Errorf(api.CodeBadRequest, "nonce must be %d..%d bytes", minAttestNonce, maxAttestNonce))
	}
	ud, err := s.UserData()
	if err != nil {
		return plainError(api.Errorf(api.CodeInternal, "user_data: %v", err))
	}
	doc, err := s.nsm.Attest(nsm.AttestRequest{UserData: ud, Nonce: nonce, PublicKey: s.signer.SPKI()})
	if err != nil {
		s.log.Error("attestation failed", "err", err)
		return plainError(api.Errorf(api.CodeInternal, "attestation failed"))
	}
	return channel.Reply{Status: 200, Body: doc}
}

// UserData is the current user_data.
func (s *Server) UserData() ([]byte, error) {
	u := api.UserData{
		Version: api.UserDataVersion, X25519: s.x25519.PublicKey().Bytes(),
		SignerID: s.cfg.SignerID, ConfigSHA256: s.cfg.Hash[:], Epoch: s.keys.Current(),
	}
	return envelope.MarshalUserData(&u)
}

func (s *Server) ready() channel.Reply {
	st := s.custody.Status()
	r := api.Readiness{Ready: st.Ready, Reason: st.Reason, Epoch: st.Epoch, KeyID: s.signer.KeyID(), Panics: s.panics.Load(),
		Generation: st.Generation, Fleet: st.Fleet}
	status := 200
	if !r.Ready {
		status = 503
	}
	b, _ := json.Marshal(r)
	return channel.Reply{Status: status, Body: b}
}

func (s *Server) method(ctx context.Context, call *channel.Call) channel.Reply {
	dev := strings.HasPrefix(call.Route, "dev/")
	handler, known := s.methods[call.Route]
	if !known {
		// Only an authenticated caller learns which methods exist.
		if _, err := s.verifier.Verify(call.Route, call.Body, call.Chain); err != nil {
			return s.refuse(call, dev, err)
		}
		return s.refuse(call, dev, api.Errorf(api.CodeUnknownMethod, "no method %q", text.Truncate(call.Route)))
	}
	req, err := s.verifier.Verify(call.Route, call.Body, call.Chain)
	if err != nil {
		return s.refuse(call, dev, err)
	}
	if !s.cfg.Allowed(req.Caller.Role, call.Route) {
		return s.refuse(call, dev, api.Errorf(api.CodeUnauthorized, "role %q may not call %s", req.Caller.Role, call.Route))
	}
	if err := ctx.Err(); err != nil {
		return s.refuse(call, dev, api.Errorf(api.CodeTimeout, "deadline passed"))
	}
	result, err := handler(ctx, &service.Request{Caller: req.Caller, Params: req.Params, ReplyKey: req.ReplyKey})
	if err != nil {
		return s.refuse(call, dev, err)
	}
	body, err := s.signer.Sign(call.Body, s.clock(), result, nil)
	if err != nil {
		s.log.Error("signing response failed", "route", call.Route, "err", err)
		return plainError(api.Errorf(api.CodeInternal, "response could not be signed"))
	}
	return channel.Reply{Status: 200, Body: body}
}

// refuse answers with a signed error. On the compatibility surface every
// authentication or authorization failure is "unauthorized", as the system
// it stands in for answers.
func (s *Server) refuse(call *channel.Call, dev bool, err error) channel.Reply {
	var e *api.Error
	if !errors.As(err, &e) {
		s.log.Error("method failed", "route", call.Route, "err", err)
		e = api.Errorf(api.CodeInternal, "internal error")
	}
	if dev {
		switch e.Code {
		case api.CodeUnauthenticated, api.CodeStale, api.CodeReplayed, api.CodeWrongAudience:
			e = &api.Error{Code: api.CodeUnauthorized, Message: e.Message}
		}
	}
	if code := api.STSErrorCode(e); code != "" {
		// STS's own code (validated to a word), for the operator: why
		// STS refused, or what made it unavailable.
		s.log.Info("request refused", "route", call.Route, "code", e.Code, "sts_code", code)
	} else {
		s.log.Info("request refused", "route", call.Route, "code", e.Code)
	}
	body, serr := s.signer.Sign(call.Body, s.clock(), nil, e)
	if serr != nil {
		return plainError(e)
	}
	return channel.Reply{Status: e.Code.Status(), Body: body}
}

// plainError is an unsigned JSON error, for answers outside the envelope
// (attestation, readiness) and for the case where signing itself failed.
func plainError(e *api.Error) channel.Reply { return channel.ErrorReply(e.Code, e.Message) }

func roleSet(roles map[string][]string) map[string]bool {
	out := make(map[string]bool, len(roles))
	for r := range roles {
		out[r] = true
	}
	return out
}

// WaitsOnIO reports whether a route may wait on the network: the key
// methods (KMS, the parent's store) and v1/sts-credentials (STS, up to
// sts.timeout). The channel runs them outside the workers that only
// compute, so that an STS that hangs — or a parent holding the tunnel —
// holds up no signing call.
func WaitsOnIO(route string) bool {
	return custody.WaitsOnIO(route) || route == api.STSCredentials.Route
}

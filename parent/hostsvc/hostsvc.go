// Package hostsvc answers the enclave's calls to its parent (see
// enclave/host): the state store and the instance role's credentials. It
// serves on its own channel listener, the enclave being the caller.
package hostsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/parent/state"
)

// CredentialSource supplies temporary AWS credentials (IMDSv2 on EC2).
type CredentialSource interface {
	Credentials(ctx context.Context) (*hostproto.Credentials, error)
}

// Service is a channel.Handler for the enclave's calls.
type Service struct {
	Store state.Store
	// Credentials may be nil: aws/credentials then answers 503.
	Credentials CredentialSource
	Logger      *slog.Logger
	// OnPut is told of every stored sequence (metrics).
	OnPut func(seq uint64, err error)
}

var _ channel.Handler = (*Service)(nil)

func reply(status int, v any) channel.Reply {
	b, _ := json.Marshal(v)
	return channel.Reply{Status: status, Body: b}
}

// fail answers an error with the one error body of the API. The enclave
// reads only the status (enclave/host): the body is for people reading a
// capture.
func fail(status int, code api.Code, msg string) channel.Reply {
	return reply(status, api.ErrorBody{Error: code, Message: msg})
}

// Handle answers one call from the enclave.
func (s *Service) Handle(ctx context.Context, call *channel.Call) channel.Reply {
	switch call.Route {
	case hostproto.RouteStateList:
		seqs, err := s.Store.List(ctx, hostproto.MaxSequences)
		if err != nil {
			s.Logger.Error("state list failed", "store", s.Store.String(), "err", err)
			return fail(500, api.CodeInternal, "state store unreadable")
		}
		if len(seqs) > hostproto.MaxSequences {
			seqs = seqs[:hostproto.MaxSequences]
		}
		return reply(200, hostproto.SequenceList{Sequences: append([]uint64{}, seqs...)})
	case hostproto.RouteStateGet:
		var ref hostproto.SequenceRef
		if err := json.Unmarshal(call.Body, &ref); err != nil || ref.Seq == 0 {
			return fail(400, api.CodeBadRequest, "state/get needs {\"seq\": N}")
		}
		b, err := s.Store.Get(ctx, ref.Seq)
		if errors.Is(err, state.ErrNotFound) {
			return fail(404, api.CodeNotFound, "no such sequence")
		}
		if err != nil {
			s.Logger.Error("state get failed", "seq", ref.Seq, "err", err)
			return fail(500, api.CodeInternal, "state store unreadable")
		}
		return channel.Reply{Status: 200, Body: b}
	case hostproto.RouteStatePut:
		seq, sealed, err := hostproto.DecodePut(call.Body)
		if err != nil {
			return fail(400, api.CodeBadRequest, err.Error())
		}
		err = s.Store.Put(ctx, seq, sealed)
		if s.OnPut != nil {
			s.OnPut(seq, err)
		}
		if errors.Is(err, state.ErrExists) {
			s.Logger.Info("sealed keyring not stored: the sequence is taken", "seq", seq, "store", s.Store.String())
			return fail(hostproto.StatusExists, api.CodeStateConflict, fmt.Sprintf("sequence %d is already stored", seq))
		}
		if err != nil {
			s.Logger.Error("state put failed", "seq", seq, "store", s.Store.String(), "err", err)
			return fail(507, api.CodeStateUnavailable, fmt.Sprintf("state store cannot write: %v", err))
		}
		s.Logger.Info("sealed keyring stored", "seq", seq, "bytes", len(sealed), "store", s.Store.String())
		return reply(200, hostproto.SequenceRef{Seq: seq})
	case hostproto.RouteCredentials:
		if s.Credentials == nil {
			return fail(503, api.CodeInternal, "no credential source configured (--imds)")
		}
		c, err := s.Credentials.Credentials(ctx)
		if err != nil {
			s.Logger.Error("instance credentials unavailable", "err", err)
			return fail(503, api.CodeInternal, fmt.Sprintf("instance credentials unavailable: %v", err))
		}
		// The one place the secrets are written: json.Marshal of
		// Credentials redacts them.
		b, err := hostproto.EncodeCredentials(c)
		if err != nil {
			s.Logger.Error("instance credentials unencodable", "err", err)
			return fail(503, api.CodeInternal, "instance credentials unavailable")
		}
		return channel.Reply{Status: 200, Body: b}
	}
	return fail(404, api.CodeNotFound, "no such route")
}

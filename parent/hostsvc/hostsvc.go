// Package hostsvc answers the enclave's calls to its parent (see
// enclave/host): the state store and the instance role's credentials. It
// serves on its own channel listener, the enclave being the caller.
package hostsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
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

// maxListRequest bounds a state/list body: {"after": n} with n in at
// most 20 digits, and room for white space.
const maxListRequest = 256

// decodeList reads a state/list body strictly (hostproto.ListRequest, no
// other member, no duplicate); an empty body lists after 0.
func decodeList(body []byte) (uint64, error) {
	if len(body) == 0 {
		return 0, nil
	}
	var req hostproto.ListRequest
	if err := strictjson.Decode(body, &req, maxListRequest); err != nil {
		return 0, fmt.Errorf("state/list needs {\"after\": N}: %w", err)
	}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		// null decodes into a struct as nothing at all.
		return 0, errors.New("state/list needs {\"after\": N}: not an object")
	}
	return req.After, nil
}

// checkListed holds a store's answer to its contract: at most
// MaxSequences, ascending, above after.
func checkListed(seqs []uint64, after uint64) error {
	if len(seqs) > hostproto.MaxSequences {
		return fmt.Errorf("the store listed %d sequences, over %d", len(seqs), hostproto.MaxSequences)
	}
	for _, seq := range seqs {
		if seq <= after {
			return fmt.Errorf("the store listed %d after %d", seq, after)
		}
		after = seq
	}
	return nil
}

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
		after, err := decodeList(call.Body)
		if err != nil {
			return fail(400, api.CodeBadRequest, err.Error())
		}
		seqs, more, err := s.Store.List(ctx, after, hostproto.MaxSequences)
		if err == nil {
			err = checkListed(seqs, after)
		}
		if err != nil {
			s.Logger.Error("state list failed", "store", s.Store.String(), "after", after, "err", err)
			return fail(500, api.CodeInternal, "state store unreadable")
		}
		return reply(200, hostproto.SequenceList{Sequences: append([]uint64{}, seqs...), More: more})
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

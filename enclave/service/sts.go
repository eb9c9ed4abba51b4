package service

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/sts"
)

// MaxExchanges bounds the STS exchanges in flight; one more is refused
// at once (overloaded), so that callers waiting on STS cannot hold the
// enclave's in-flight slots that every other method needs.
const MaxExchanges = sts.MaxConns

// Exchanger trades a web identity token for AWS credentials: the enclave's
// STS client (enclave/sts), or a test's.
type Exchanger interface {
	Exchange(ctx context.Context, r sts.Request) (*sts.Credentials, error)
}

// stsCredentials mints a token for the actor the caller signed for, and
// exchanges it with STS for the allowed role, under a session policy
// rendered here. Nothing the parent relays can change the role, the actor
// or the policy: they come from the signed params and the measured
// configuration, and TLS to STS ends in the enclave.
func (s *Service) stsCredentials(ctx context.Context, r *Request, p *api.STSCredentialsRequest) (*api.STSCredentialsResponse, error) {
	o, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	role := s.sts.Role(p.RoleARN)
	if role == nil {
		return nil, api.Errorf(api.CodeRoleNotAllowed, "role_arn is not one of the %d roles the configuration allows", len(s.sts.Roles))
	}
	if !role.AllowsCaller(r.Caller.Role) {
		return nil, api.Errorf(api.CodeRoleNotAllowed, "callers of role %q may not ask for this role", r.Caller.Role)
	}
	if p.TTL < config.STSMinTTL || p.TTL > role.MaxTTL {
		return nil, api.Errorf(api.CodeTTLOutOfRange, "ttl %d: want %d..%d seconds for this role", p.TTL, config.STSMinTTL, role.MaxTTL)
	}
	enc, err := replyEncrypter(r, "sts-credentials", "the credentials")
	if err != nil {
		return nil, err
	}
	if s.exchanger == nil {
		return nil, api.Errorf(api.CodeSTSUnavailable, "Unconfigured: the enclave has no way to reach STS")
	}
	select {
	case s.exchanges <- struct{}{}:
		defer func() { <-s.exchanges }()
	default:
		return nil, api.Errorf(api.CodeOverloaded, "%d STS exchanges are in flight: retry shortly", MaxExchanges)
	}
	actor := o.String()
	policy, err := role.SessionPolicyFor(actor)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "the session policy could not be rendered")
	}
	key, err := s.keys.Issuer(0)
	if err != nil {
		return nil, keyError(err)
	}
	token, _, err := s.mintIDToken(key, o, s.sts.Audience, s.sts.TokenTTL)
	if err != nil {
		return nil, err
	}
	creds, err := s.exchanger.Exchange(ctx, sts.Request{
		RoleARN: role.ARN, SessionName: actor, Token: token, Policy: policy, Duration: int32(p.TTL),
	})
	clear(token)
	if err != nil {
		return nil, stsError(err)
	}
	plain, err := json.Marshal(api.AWSCredentials{
		Version: 1, AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		SessionToken: creds.SessionToken, Expiration: creds.Expiration.UTC(),
	})
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "the credentials could not be encoded")
	}
	defer clear(plain)
	out, err := sealToReply(enc, plain, "the credentials")
	if err != nil {
		return nil, err
	}
	return &api.STSCredentialsResponse{
		Credentials: out, RoleARN: role.ARN, AssumedRoleARN: creds.AssumedRoleARN,
		Expires: creds.Expiration.Unix(), KeyID: key.KeyID(), Epoch: key.Epoch(),
	}, nil
}

// stsError maps the exchange's errors to the closed codes, STS's code or
// the reason of unavailability first in the message (api.STSErrorCode).
// None quotes STS's message, the token or a credential.
func stsError(err error) error {
	var refused *sts.RefusedError
	var unavailable *sts.UnavailableError
	switch {
	case errors.As(err, &refused):
		return api.Errorf(api.CodeSTSRefused, "%s: STS refused the exchange (HTTP %d)", refused.Code, refused.Status)
	case errors.As(err, &unavailable):
		return api.Errorf(api.CodeSTSUnavailable, "%s: %v", unavailable.Reason, err)
	case errors.Is(err, sts.ErrRequest):
		// The configuration's bounds keep every request within STS's:
		// this is a bug, and nothing was sent.
		return api.Errorf(api.CodeInternal, "the exchange was not sent: %v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return api.Errorf(api.CodeSTSUnavailable, "Timeout: STS did not answer in time")
	}
	return api.Errorf(api.CodeSTSUnavailable, "Unavailable: the exchange failed")
}

package api

import (
	"strings"
	"time"
)

// STSCredentials mints a token for an actor and exchanges it with AWS STS
// (AssumeRoleWithWebIdentity) inside the enclave, for a role of the
// configuration's allow-list, with a session policy rendered inside the
// enclave that confines the credentials to the actor; the credentials come
// back encrypted to the request's reply_key (docs/protocol.md, "STS"). It
// exists only when the enclave configuration has an "sts" member.
var STSCredentials = Method[STSCredentialsRequest, STSCredentialsResponse]{Route: "v1/sts-credentials", ReplyKey: true}

// STSCredentialsRequest is v1/sts-credentials' params. The request envelope
// must carry a reply_key.
type STSCredentialsRequest struct {
	// ActorOmni is the actor (64 hex characters): the token's sub and
	// principal tag actor_omni, the session's name, and what the session
	// policy confines the credentials to.
	ActorOmni string `json:"actor_omni"`
	// RoleARN must be, byte for byte, a role of the configuration's
	// allow-list that the caller's role may ask for.
	RoleARN string `json:"role_arn"`
	// TTL is the credentials' lifetime in seconds: 900 (STS's least) up
	// to the role's configured max_ttl.
	TTL int64 `json:"ttl"`
}

// STSCredentialsResponse is v1/sts-credentials' result.
type STSCredentialsResponse struct {
	// Credentials is a compact JWE (ECDH-ES, A256GCM) to the request's
	// reply_key; its plaintext is an AWSCredentials in JSON.
	Credentials string `json:"credentials_jwe"`
	// RoleARN is the role asked for; AssumedRoleARN is STS's
	// AssumedRoleUser.Arn.
	RoleARN        string `json:"role_arn"`
	AssumedRoleARN string `json:"assumed_role_arn"`
	// Expires is the credentials' expiration (Unix seconds).
	Expires int64 `json:"expires"`
	// KeyID and Epoch name the issuer key that signed the exchanged token.
	KeyID string `json:"kid"`
	Epoch uint32 `json:"k3_epoch"`
}

// AWSCredentials is the plaintext of STSCredentialsResponse.Credentials:
// temporary credentials, in the names the AWS SDKs' credential_process
// output uses.
type AWSCredentials struct {
	Version         int       `json:"Version"`
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey"`
	SessionToken    string    `json:"SessionToken"`
	Expiration      time.Time `json:"Expiration"`
}

// STSErrorCode is the STS error code an sts_refused or sts_unavailable
// refusal names (its message's first word, before the colon), or "".
func STSErrorCode(e *Error) string {
	if e == nil || (e.Code != CodeSTSRefused && e.Code != CodeSTSUnavailable) {
		return ""
	}
	code, _, ok := strings.Cut(e.Message, ": ")
	if !ok || code == "" || len(code) > 64 || strings.Trim(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != "" {
		return ""
	}
	return code
}

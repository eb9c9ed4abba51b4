package api

import "encoding/json"

// The enclave as an OpenID Connect issuer (docs/protocol.md, "OIDC"): its
// issuer keys are derived from the keyring, one per epoch, so every
// replica and every restart publishes the same keys; the current epoch's
// signs. Both methods exist only when the enclave configuration has an
// "oidc" member.
var (
	// OIDCDiscovery answers the discovery document and the JWKS to publish
	// at the configured issuer, signed like every answer: an operator's
	// tool checks them against the attested enclave before uploading.
	OIDCDiscovery = Method[OIDCDiscoveryRequest, OIDCDiscoveryResponse]{Route: "v1/oidc/discovery"}
	// OIDCToken mints an ID token for an actor, encrypted to the request's
	// reply_key: a token is a bearer credential the parent must not see.
	OIDCToken = Method[OIDCTokenRequest, OIDCTokenResponse]{Route: "v1/oidc-token", ReplyKey: true}
)

// OIDCDiscoveryRequest is v1/oidc/discovery's params (none).
type OIDCDiscoveryRequest struct{}

// OIDCDiscoveryResponse is v1/oidc/discovery's result.
type OIDCDiscoveryResponse struct {
	// Issuer is the configured issuer URL (https, no query or fragment).
	Issuer string `json:"issuer"`
	// Configuration is the exact bytes to serve at
	// <issuer>/.well-known/openid-configuration.
	Configuration json.RawMessage `json:"openid_configuration"`
	// JWKSURI is the configuration's jwks_uri, and JWKS the exact bytes to
	// serve there: the issuer key of every epoch held, epoch 1 first.
	JWKSURI string          `json:"jwks_uri"`
	JWKS    json.RawMessage `json:"jwks"`
	// KeyID is the kid (RFC 7638 thumbprint) of the key that signs now,
	// the current epoch's.
	KeyID string `json:"kid"`
	Epoch uint32 `json:"k3_epoch"`
}

// OIDCTokenRequest is v1/oidc-token's params. The request envelope must
// carry a reply_key.
type OIDCTokenRequest struct {
	// ActorOmni is the actor the token is for: its sub, and its
	// principal tag actor_omni (64 hex characters).
	ActorOmni string `json:"actor_omni"`
	// Audience must be one of the configuration's audiences.
	Audience string `json:"audience"`
	// TTL is the token's lifetime in seconds, within the configuration's
	// bounds.
	TTL int64 `json:"ttl"`
}

// OIDCTokenResponse is v1/oidc-token's result.
type OIDCTokenResponse struct {
	// Token is a compact JWE (ECDH-ES, A256GCM) to the request's
	// reply_key; its plaintext is the ID token, a compact JWS (ES256).
	Token string `json:"token_jwe"`
	// KeyID is the kid that signed the token, Expires its exp (Unix
	// seconds), Epoch the epoch of its key.
	KeyID   string `json:"kid"`
	Expires int64  `json:"exp"`
	Epoch   uint32 `json:"k3_epoch"`
}

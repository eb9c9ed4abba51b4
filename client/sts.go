package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// AWSCredentials are temporary credentials v1/sts-credentials obtained,
// decrypted. SecretAccessKey and SessionToken are secrets: the type prints
// and logs only the key id, the role and the expiration.
type AWSCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	// RoleARN is the role asked for, AssumedRoleARN STS's name for the
	// session (…:assumed-role/<role>/<actor omni>).
	RoleARN        string
	AssumedRoleARN string
	// KeyID and Epoch name the issuer key that signed the exchanged token.
	KeyID string
	Epoch uint32
}

// String and the printing paths below name no secret.
func (c AWSCredentials) String() string {
	return fmt.Sprintf("AWSCredentials{AccessKeyID: %s, RoleARN: %s, Expiration: %s, secrets redacted}",
		c.AccessKeyID, c.RoleARN, c.Expiration.UTC().Format(time.RFC3339))
}

// Format prints String for every verb.
func (c AWSCredentials) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// MarshalJSON writes no secret either: a program that hands the
// credentials on builds the JSON it needs from the fields (signerctl sts
// credentials prints credential_process JSON so).
func (c AWSCredentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessKeyID string    `json:"access_key_id"`
		RoleARN     string    `json:"role_arn"`
		Expiration  time.Time `json:"expiration"`
		Redacted    bool      `json:"redacted"`
	}{c.AccessKeyID, c.RoleARN, c.Expiration, true})
}

// LogValue logs no secret.
func (c AWSCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID), slog.String("role_arn", c.RoleARN),
		slog.Time("expiration", c.Expiration))
}

// STSCredentials calls v1/sts-credentials: the enclave mints a token for
// actorOmni, exchanges it with STS for roleARN (a role of its
// configuration's allow-list that this caller's role may ask for) under a
// session policy confining it to the actor, and answers the credentials
// encrypted to a fresh reply key, which this decrypts. ttl is whole
// seconds, 900 up to the role's configured max_ttl. A refusal by STS is
// an *api.Error with code sts_refused, whose STS error code
// api.STSErrorCode gives.
func (c *Client) STSCredentials(ctx context.Context, actorOmni, roleARN string, ttl time.Duration) (*AWSCredentials, error) {
	if ttl <= 0 || ttl%time.Second != 0 {
		return nil, fmt.Errorf("client: sts credentials ttl %v: want a positive whole number of seconds", ttl)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var r api.STSCredentialsResponse
	p := api.STSCredentialsRequest{ActorOmni: actorOmni, RoleARN: roleARN, TTL: int64(ttl / time.Second)}
	if err := c.call(ctx, nil, api.STSCredentials.Route, &p, &r, &jose.JSONWebKey{Key: &key.PublicKey}); err != nil {
		return nil, err
	}
	if r.RoleARN != roleARN {
		return nil, fmt.Errorf("%w: the credentials are for another role than asked", ErrResponse)
	}
	plain, err := openReply(key, r.Credentials, "credentials_jwe")
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var creds api.AWSCredentials
	if err := strictjson.Decode(plain, &creds, envelope.MaxResponse); err != nil {
		// The decoder's error may quote the plaintext: say only where.
		return nil, fmt.Errorf("%w: credentials_jwe: the plaintext is not AWS credentials", ErrResponse)
	}
	switch {
	case creds.Version != 1 || creds.AccessKeyID == "" || creds.SecretAccessKey == "" || creds.SessionToken == "":
		return nil, fmt.Errorf("%w: credentials_jwe: incomplete credentials", ErrResponse)
	case creds.Expiration.Unix() != r.Expires:
		return nil, fmt.Errorf("%w: credentials_jwe: the expiration is not the answer's", ErrResponse)
	}
	return &AWSCredentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
		Expiration: creds.Expiration, RoleARN: r.RoleARN, AssumedRoleARN: r.AssumedRoleARN, KeyID: r.KeyID, Epoch: r.Epoch,
	}, nil
}

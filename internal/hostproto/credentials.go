package hostproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// Credentials are temporary AWS credentials of the instance role.
//
// The secret access key and the session token are unexported and held by
// a closure, which nothing prints: fmt prints a placeholder for
// Credentials, and only a function's address when a Credentials sits in
// an unexported field of another value (where fmt cannot call Format, and
// would print a string or a pointer's target under %s); slog logs the key
// id and the expiry (LogValue); JSON holds neither secret (MarshalJSON).
// Only EncodeCredentials writes them, for the parent's aws/credentials
// answer.
type Credentials struct {
	// AccessKeyID names the key; it is not secret.
	AccessKeyID string
	Expiration  time.Time
	secret      func() (secretAccessKey, sessionToken string)
}

// NewCredentials returns credentials holding the secret access key and the
// session token.
func NewCredentials(accessKeyID, secretAccessKey, sessionToken string, expiration time.Time) *Credentials {
	return &Credentials{AccessKeyID: accessKeyID, Expiration: expiration,
		secret: func() (string, string) { return secretAccessKey, sessionToken }}
}

// SecretAccessKey is the secret access key, to sign requests with.
func (c *Credentials) SecretAccessKey() string {
	if c.secret == nil {
		return ""
	}
	k, _ := c.secret()
	return k
}

// SessionToken is the session token that goes with the key.
func (c *Credentials) SessionToken() string {
	if c.secret == nil {
		return ""
	}
	_, t := c.secret()
	return t
}

// Format prints the key id only, for every verb.
func (c Credentials) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "hostproto.Credentials{AccessKeyID: %q, redacted}", c.AccessKeyID)
}

// LogValue logs the key id and the expiry, never the secrets.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID), slog.Time("expiration", c.Expiration),
		slog.Bool("redacted", true))
}

// MarshalJSON writes the key id and the expiry, never the secrets; what it
// writes does not parse as credentials. The wire form is EncodeCredentials.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessKeyID string    `json:"access_key_id"`
		Expiration  time.Time `json:"expiration"`
		Redacted    bool      `json:"redacted"`
	}{c.AccessKeyID, c.Expiration, true})
}

// UnmarshalJSON reads the wire form, as ParseCredentials does.
func (c *Credentials) UnmarshalJSON(b []byte) error {
	p, err := ParseCredentials(b)
	if err != nil {
		return err
	}
	*c = *p
	return nil
}

// ErrMalformedCredentials: an aws/credentials answer that is not credentials.
// It never quotes the answer.
var ErrMalformedCredentials = errors.New("hostproto: malformed credentials")

// credentialsWire is the body of an aws/credentials answer.
type credentialsWire struct {
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key"`
	SessionToken    string    `json:"session_token"`
	Expiration      time.Time `json:"expiration"`
}

// EncodeCredentials is the body of an aws/credentials answer: the one
// place the secrets are written.
func EncodeCredentials(c *Credentials) ([]byte, error) {
	return json.Marshal(credentialsWire{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey(),
		SessionToken: c.SessionToken(), Expiration: c.Expiration})
}

// ParseCredentials checks an aws/credentials answer. Its errors never quote
// the answer, which holds a secret.
func ParseCredentials(b []byte) (*Credentials, error) {
	var w credentialsWire
	if err := strictjson.Decode(b, &w, maxCredentialsJSON); err != nil || w.AccessKeyID == "" || w.SecretAccessKey == "" {
		return nil, ErrMalformedCredentials
	}
	return NewCredentials(w.AccessKeyID, w.SecretAccessKey, w.SessionToken, w.Expiration), nil
}

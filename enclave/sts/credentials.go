package sts

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Credentials are the temporary credentials STS answered with. The secret
// access key and the session token are secrets: fmt, log/slog and
// encoding/json print only the access key id, the expiration and the
// assumed role's ARN.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string // secret
	SessionToken    string // secret
	Expiration      time.Time
	// AssumedRoleARN is AssumedRoleUser.Arn:
	// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
	AssumedRoleARN string
	// Subject is SubjectFromWebIdentityToken, the token's sub as STS read
	// it; empty if STS named none.
	Subject string
}

// Format prints the access key id, the expiration and the assumed role,
// for every verb.
func (c Credentials) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "sts.Credentials{AccessKeyID: %q, Expiration: %s, AssumedRoleARN: %q, redacted}",
		c.AccessKeyID, c.Expiration.UTC().Format(time.RFC3339), c.AssumedRoleARN)
}

// LogValue logs the access key id, the expiration and the assumed role.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID), slog.Time("expiration", c.Expiration),
		slog.String("assumed_role_arn", c.AssumedRoleARN), slog.Bool("redacted", true))
}

// MarshalJSON writes the access key id, the expiration and the assumed
// role, never the secrets.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessKeyID    string    `json:"access_key_id"`
		Expiration     time.Time `json:"expiration"`
		AssumedRoleARN string    `json:"assumed_role_arn"`
		Redacted       bool      `json:"redacted"`
	}{c.AccessKeyID, c.Expiration, c.AssumedRoleARN, true})
}

// Request is one AssumeRoleWithWebIdentity call. The token is a secret:
// fmt, log/slog and encoding/json print the role, the session name, the
// duration and the policy's size only.
type Request struct {
	RoleARN     string
	SessionName string // RoleSessionName
	// Token is the web identity token (a compact JWS). Secret.
	Token []byte
	// Policy is an inline session policy (JSON), "" for none.
	Policy string
	// Duration is DurationSeconds, 0 for STS's default (an hour).
	Duration int32
}

// Format prints the role, the session name, the duration and the policy's
// size, for every verb.
func (r Request) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "sts.Request{RoleARN: %q, SessionName: %q, Duration: %d, Policy: %d bytes, Token: redacted}",
		r.RoleARN, r.SessionName, r.Duration, len(r.Policy))
}

// LogValue logs the role, the session name, the duration and the policy's
// size.
func (r Request) LogValue() slog.Value {
	return slog.GroupValue(slog.String("role_arn", r.RoleARN), slog.String("session_name", r.SessionName),
		slog.Int("duration", int(r.Duration)), slog.Int("policy_bytes", len(r.Policy)), slog.Bool("redacted", true))
}

// MarshalJSON writes the role, the session name, the duration and the
// policy's size, never the token.
func (r Request) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		RoleARN     string `json:"role_arn"`
		SessionName string `json:"session_name"`
		Duration    int32  `json:"duration"`
		PolicyBytes int    `json:"policy_bytes"`
		Redacted    bool   `json:"redacted"`
	}{r.RoleARN, r.SessionName, r.Duration, len(r.Policy), true})
}

// check holds r to STS's bounds, naming the field and never its value.
func (r Request) check() error {
	switch {
	case len(r.RoleARN) < minRoleARN || len(r.RoleARN) > maxRoleARN || !printable(r.RoleARN):
		return fmt.Errorf("%w: role ARN of %d bytes, or not printable ASCII", ErrRequest, len(r.RoleARN))
	case len(r.SessionName) < minSessionName || len(r.SessionName) > maxSessionName || !sessionName(r.SessionName):
		return fmt.Errorf("%w: session name must be %d to %d of [A-Za-z0-9_+=,.@-]", ErrRequest, minSessionName, maxSessionName)
	case len(r.Token) < minToken || len(r.Token) > maxToken || !printable(string(r.Token)):
		return fmt.Errorf("%w: token of %d bytes, or not printable ASCII", ErrRequest, len(r.Token))
	case len(r.Policy) > maxPolicy:
		return fmt.Errorf("%w: session policy of %d bytes, over %d", ErrRequest, len(r.Policy), maxPolicy)
	case r.Duration != 0 && (r.Duration < minDuration || r.Duration > maxDuration):
		return fmt.Errorf("%w: duration %d s, not 0 nor %d to %d", ErrRequest, r.Duration, minDuration, maxDuration)
	}
	return nil
}

// printable: every byte is visible ASCII (no space, no control).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func sessionName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '+' ||
			c == '=' || c == ',' || c == '.' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

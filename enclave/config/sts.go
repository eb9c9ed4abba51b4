package config

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// STS lets the enclave exchange its own OIDC tokens for AWS credentials
// (v1/sts-credentials): it mints a token, calls AssumeRoleWithWebIdentity
// itself over the parent's egress, with TLS ending in the enclave, and a
// session policy rendered here; absent, the method does not exist. It needs
// the oidc member: the token is the issuer's.
type STS struct {
	// Endpoint is STS's https URL: https://sts.<region>.amazonaws.com for
	// AWS. An AWS host must be an STS host; any other (a VPC endpoint's
	// private name, a test STS) is the image's choice, measured like the
	// rest of this file.
	Endpoint string `json:"endpoint"`
	// Region is only for the SDK (the call is unsigned); empty means the
	// endpoint's region, or us-east-1 for the global endpoint and non-AWS
	// hosts.
	Region string `json:"region"`
	// CAPEM is the roots the endpoint's TLS certificate must chain to:
	// Amazon's roots for AWS. The parent relays the bytes and may not read
	// them.
	CAPEM string `json:"ca_pem"`
	// Audience is the aud of the tokens exchanged: the IAM OIDC provider's
	// client id; empty means sts.amazonaws.com.
	Audience string `json:"audience"`
	// TokenTTL is the exchanged token's lifetime in seconds (it is used
	// at once, inside the enclave); 0 means 300.
	TokenTTL int64 `json:"token_ttl"`
	// Timeout bounds one exchange, retries included, as a Go duration;
	// empty means 5s (under the parent's --timeout), at most 60s. Past it
	// the answer is sts_unavailable.
	Timeout string `json:"timeout"`
	// Roles are the IAM roles credentials may be asked for, 1..64.
	Roles []STSRole `json:"roles"`

	Wait  time.Duration  `json:"-"`
	URL   *url.URL       `json:"-"`
	Roots *x509.CertPool `json:"-"`
	byARN map[string]*STSRole
}

// STSRole is one IAM role of the allow-list.
type STSRole struct {
	// ARN is the role's full ARN, arn:<partition>:iam::<account>:role/<name>.
	ARN string `json:"arn"`
	// Callers are the caller roles (keys of roles) that may ask for this
	// one; each must also be allowed v1/sts-credentials.
	Callers []string `json:"callers"`
	// SessionPolicy is the inline session policy sent with every exchange,
	// a JSON object in which every {{actor_omni}} is replaced by the actor's
	// 64 hex characters: the credentials can do at most what both the
	// role's policies and this allow. It must name {{actor_omni}}.
	SessionPolicy json.RawMessage `json:"session_policy"`
	// MaxTTL bounds the credentials' lifetime in seconds; 0 means 3600.
	// It must not exceed the role's MaxSessionDuration in IAM, or STS
	// refuses longer requests.
	MaxTTL int64 `json:"max_ttl"`

	template string // SessionPolicy compacted
	callers  map[string]bool
}

// Bounds of the sts member: AWS STS's own bounds on DurationSeconds and
// on a session policy's plaintext.
const (
	STSMinTTL              = 900
	STSMaxTTL              = 43200
	DefaultSTSRoleMaxTTL   = 3600
	DefaultSTSTokenTTL     = 300
	DefaultSTSAudience     = "sts.amazonaws.com"
	DefaultSTSTimeout      = "5s"
	MaxSTSRoles            = 64
	MaxSessionPolicy       = 2048
	ActorOmniPlaceholder   = "{{actor_omni}}"
	actorOmniLen           = 64
	maxSTSRoleARN          = 2048
	minTokenTTL            = 60
	maxTokenTTL            = 3600
	defaultNonAWSSTSRegion = "us-east-1"
)

// Errors of the sts member, for errors.Is.
var (
	// ErrSTSEndpoint: an AWS host that is not STS's.
	ErrSTSEndpoint = errors.New("not an AWS STS endpoint")
	// ErrRoleARN: not a full IAM role ARN.
	ErrRoleARN = errors.New("want a full role ARN arn:<partition>:iam::<account>:role/<name>")
	// ErrSessionPolicy: the session policy template is refused.
	ErrSessionPolicy = errors.New("session policy template refused")
)

var roleARNPattern = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,576}$`)

func (s *STS) validate(c *Config) error {
	if c.OIDC == nil {
		return errors.New("sts: needs the oidc member (the tokens exchanged are the issuer's)")
	}
	var err error
	if s.URL, err = stsEndpoint(s.Endpoint); err != nil {
		return err
	}
	if s.Region == "" {
		s.Region = stsRegion(s.URL.Hostname())
	}
	if !regionPattern.MatchString(s.Region) {
		return fmt.Errorf("sts.region %q: not a region name", s.Region)
	}
	s.Roots = x509.NewCertPool()
	if !s.Roots.AppendCertsFromPEM([]byte(s.CAPEM)) {
		return errors.New("sts.ca_pem: no certificate (the enclave has no system roots)")
	}
	if s.Audience == "" {
		s.Audience = DefaultSTSAudience
	}
	if len(s.Audience) > maxOIDCAudience || !printable(s.Audience) {
		return fmt.Errorf("sts.audience %q: not 1..%d printable ASCII characters", s.Audience, maxOIDCAudience)
	}
	if s.TokenTTL == 0 {
		s.TokenTTL = DefaultSTSTokenTTL
	}
	if s.TokenTTL < minTokenTTL || s.TokenTTL > maxTokenTTL {
		return fmt.Errorf("sts.token_ttl %d: want %d..%d seconds", s.TokenTTL, minTokenTTL, maxTokenTTL)
	}
	if s.Timeout == "" {
		s.Timeout = DefaultSTSTimeout
	}
	if s.Wait, err = time.ParseDuration(s.Timeout); err != nil || s.Wait < time.Second || s.Wait > time.Minute {
		return fmt.Errorf("sts.timeout %q: want a Go duration of 1s..60s", s.Timeout)
	}
	if len(s.Roles) == 0 || len(s.Roles) > MaxSTSRoles {
		return fmt.Errorf("sts.roles: %d, want 1..%d", len(s.Roles), MaxSTSRoles)
	}
	s.byARN = make(map[string]*STSRole, len(s.Roles))
	for i := range s.Roles {
		r := &s.Roles[i]
		if err := r.validate(c); err != nil {
			return fmt.Errorf("sts.roles[%d]: %w", i, err)
		}
		if _, dup := s.byARN[r.ARN]; dup {
			return fmt.Errorf("sts.roles[%d]: %s twice", i, r.ARN)
		}
		s.byARN[r.ARN] = r
	}
	return nil
}

// Role returns the allowed role with this exact ARN, or nil.
func (s *STS) Role(arn string) *STSRole {
	return s.byARN[arn]
}

func (r *STSRole) validate(c *Config) error {
	if len(r.ARN) > maxSTSRoleARN || !roleARNPattern.MatchString(r.ARN) {
		q := r.ARN
		if len(q) > 100 {
			q = q[:100] + "..."
		}
		return fmt.Errorf("arn %q: %w", q, ErrRoleARN)
	}
	if len(r.Callers) == 0 {
		return errors.New("callers: none (name the caller roles that may ask for this role)")
	}
	r.callers = map[string]bool{}
	for _, name := range r.Callers {
		methods, ok := c.Roles[name]
		if !ok {
			return fmt.Errorf("callers: %q is not a role of the configuration", name)
		}
		if !slices.Contains(methods, "v1/sts-credentials") {
			return fmt.Errorf("callers: %q may not call v1/sts-credentials", name)
		}
		r.callers[name] = true
	}
	if r.MaxTTL == 0 {
		r.MaxTTL = DefaultSTSRoleMaxTTL
	}
	if r.MaxTTL < STSMinTTL || r.MaxTTL > STSMaxTTL {
		return fmt.Errorf("max_ttl %d: want %d..%d seconds (STS's bounds)", r.MaxTTL, STSMinTTL, STSMaxTTL)
	}
	t, err := sessionPolicyTemplate(r.SessionPolicy)
	if err != nil {
		return fmt.Errorf("session_policy: %w", err)
	}
	r.template = t
	return nil
}

// AllowsCaller reports whether a caller of role name may ask for r.
func (r *STSRole) AllowsCaller(name string) bool { return r.callers[name] }

// SessionPolicyFor renders the session policy for an actor, given as its
// 64 lower-case hex characters (checked again here: only those may be
// spliced into the JSON).
func (r *STSRole) SessionPolicyFor(actorHex string) (string, error) {
	if len(actorHex) != actorOmniLen || strings.Trim(actorHex, "0123456789abcdef") != "" {
		return "", errors.New("config: an actor is 64 lower-case hex characters")
	}
	return strings.ReplaceAll(r.template, ActorOmniPlaceholder, actorHex), nil
}

// sessionPolicyTemplate checks a session policy template and returns it
// compacted: a JSON object with a Statement, naming the placeholder, no
// other "{{", and at most MaxSessionPolicy bytes once rendered.
func sessionPolicyTemplate(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", fmt.Errorf("%w: none (a session policy confines the credentials to the actor)", ErrSessionPolicy)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", fmt.Errorf("%w: not a JSON object", ErrSessionPolicy)
	}
	if _, ok := doc["Statement"]; !ok {
		return "", fmt.Errorf("%w: no Statement", ErrSessionPolicy)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", fmt.Errorf("%w: not JSON", ErrSessionPolicy)
	}
	t := b.String()
	n := strings.Count(t, ActorOmniPlaceholder)
	if n == 0 {
		return "", fmt.Errorf("%w: it does not name %s, so it cannot confine the credentials to the actor", ErrSessionPolicy, ActorOmniPlaceholder)
	}
	if strings.Count(t, "{{") != n || strings.Count(t, "}}") != n {
		return "", fmt.Errorf("%w: a {{ or }} that is not %s", ErrSessionPolicy, ActorOmniPlaceholder)
	}
	if rendered := len(t) + n*(actorOmniLen-len(ActorOmniPlaceholder)); rendered > MaxSessionPolicy {
		return "", fmt.Errorf("%w: %d bytes once rendered, STS allows %d", ErrSessionPolicy, rendered, MaxSessionPolicy)
	}
	return t, nil
}

// stsEndpoint checks sts.endpoint: https://host[:port], lower case; an AWS
// host must be STS's.
func stsEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || endpoint == "" || u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || u.Opaque != "" || strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("sts.endpoint %q: want https://host[:port]", endpoint)
	}
	host := u.Hostname()
	if host != strings.ToLower(host) {
		return nil, fmt.Errorf("sts.endpoint %q: write the host in lower case", endpoint)
	}
	if isAWSHost(host) && !isSTSHost(host) {
		return nil, fmt.Errorf("sts.endpoint %q: %w: want sts.<region>.amazonaws.com", endpoint, ErrSTSEndpoint)
	}
	if u.Port() == "" {
		u.Host += ":443"
	}
	u.Path = ""
	return u, nil
}

var stsHostPattern = regexp.MustCompile(`^(?:vpce-[a-z0-9-]{1,63}\.)?sts(?:-fips)?(?:\.([a-z]{2}(?:-[a-z]+)+-[0-9]))?(?:\.vpce)?\.(?:amazonaws\.com|amazonaws\.com\.cn|api\.aws)$`)

// isSTSHost: sts.amazonaws.com (global), sts[-fips].<region>.<suffix>,
// or an interface VPC endpoint's vpce-<id>.sts.<region>.vpce.<suffix>.
func isSTSHost(host string) bool {
	m := stsHostPattern.FindStringSubmatch(host)
	if m == nil {
		return false
	}
	vpce := strings.HasPrefix(host, "vpce-")
	if vpce != strings.Contains(host, ".vpce.") || (vpce && m[1] == "") {
		return false
	}
	if m[1] != "" && partitionOf(m[1]) == "aws-cn" != strings.HasSuffix(host, ".amazonaws.com.cn") {
		return false
	}
	return true
}

// stsRegion is the region in an STS host's name, or us-east-1.
func stsRegion(host string) string {
	if m := stsHostPattern.FindStringSubmatch(host); m != nil && m[1] != "" {
		return m[1]
	}
	return defaultNonAWSSTSRegion
}

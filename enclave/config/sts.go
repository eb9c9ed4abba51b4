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
	"strconv"
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
	// Audience is the aud of the tokens exchanged, a client id of the IAM
	// OIDC provider that the trust policies of the roles below pin. It must
	// not be one of oidc.audiences: a caller of v1/oidc-token could then
	// mint a token those roles trust and exchange it itself, with no
	// session policy.
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
	// ErrSTSAudience: sts.audience is also an oidc audience.
	ErrSTSAudience = errors.New("also one of oidc.audiences: v1/oidc-token could mint tokens the sts roles trust, to be exchanged without the session policy")
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
	if s.Audience == "" || len(s.Audience) > maxOIDCAudience || !printable(s.Audience) {
		return fmt.Errorf("sts.audience %q: not 1..%d printable ASCII characters", s.Audience, maxOIDCAudience)
	}
	// A token v1/oidc-token mints must not be one the roles below trust:
	// its caller could exchange it itself, without the session policy and
	// without being in a role's callers.
	if slices.Contains(c.OIDC.Audiences, s.Audience) {
		return fmt.Errorf("sts.audience %q: %w", s.Audience, ErrSTSAudience)
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
// compacted. The text is what is rendered, so the checks are made on its
// decoded strings as well as on the text: a JSON object whose Statement is
// one statement or a non-empty list of them; {{actor_omni}} only inside
// string values, never a key, and no other {{ or }} in any string (nor an
// escaped look-alike: the placeholders decoded must be those in the text);
// and in every Allow statement a Resource (no NotResource, no NotAction),
// each of whose entries names the actor or is one resource without a
// wildcard. At most MaxSessionPolicy bytes once rendered.
func sessionPolicyTemplate(raw json.RawMessage) (string, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return "", fmt.Errorf("%w: none (a session policy confines the credentials to the actor)", ErrSessionPolicy)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", fmt.Errorf("%w: not JSON", ErrSessionPolicy)
	}
	t := b.String()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("%w: not JSON", ErrSessionPolicy)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("%w: not a JSON object", ErrSessionPolicy)
	}
	n, err := countPlaceholders(doc)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("%w: it does not name %s, so it cannot confine the credentials to the actor", ErrSessionPolicy, ActorOmniPlaceholder)
	}
	if n != strings.Count(t, ActorOmniPlaceholder) {
		return "", fmt.Errorf("%w: an escaped %s (it would reach STS as written, not as the actor)", ErrSessionPolicy, ActorOmniPlaceholder)
	}
	var statements []any
	switch st := doc["Statement"].(type) {
	case map[string]any:
		statements = []any{st}
	case []any:
		statements = st
	}
	if len(statements) == 0 {
		return "", fmt.Errorf("%w: no Statement (one statement or a non-empty list)", ErrSessionPolicy)
	}
	for i, st := range statements {
		m, ok := st.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%w: Statement[%d] is not an object", ErrSessionPolicy, i)
		}
		if err := checkStatement(m); err != nil {
			return "", fmt.Errorf("%w: Statement[%d]: %v", ErrSessionPolicy, i, err)
		}
	}
	if rendered := len(t) + n*(actorOmniLen-len(ActorOmniPlaceholder)); rendered > MaxSessionPolicy {
		return "", fmt.Errorf("%w: %d bytes once rendered, STS allows %d", ErrSessionPolicy, rendered, MaxSessionPolicy)
	}
	return t, nil
}

// countPlaceholders counts {{actor_omni}} in v's strings, refusing one in
// a key and any other {{ or }}.
func countPlaceholders(v any) (int, error) {
	switch v := v.(type) {
	case string:
		if rest := strings.ReplaceAll(v, ActorOmniPlaceholder, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
			return 0, fmt.Errorf("%w: a {{ or }} that is not %s", ErrSessionPolicy, ActorOmniPlaceholder)
		}
		return strings.Count(v, ActorOmniPlaceholder), nil
	case map[string]any:
		n := 0
		for k, e := range v {
			if strings.Contains(k, "{{") || strings.Contains(k, "}}") {
				return 0, fmt.Errorf("%w: %s or a brace pair in a key", ErrSessionPolicy, ActorOmniPlaceholder)
			}
			m, err := countPlaceholders(e)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case []any:
		n := 0
		for _, e := range v {
			m, err := countPlaceholders(e)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	}
	return 0, nil
}

// checkStatement: an Allow statement reaches only the actor's resources
// or named single resources.
func checkStatement(m map[string]any) error {
	effect, _ := m["Effect"].(string)
	switch effect {
	case "Deny":
		return nil // a Deny only narrows
	case "Allow":
	default:
		return fmt.Errorf("the Effect %q: want Allow or Deny", effect)
	}
	for _, broad := range []string{"NotResource", "NotAction", "NotPrincipal"} {
		if _, ok := m[broad]; ok {
			return fmt.Errorf("%s in an Allow statement reaches everything it does not name", broad)
		}
	}
	var resources []any
	switch r := m["Resource"].(type) {
	case string:
		resources = []any{r}
	case []any:
		resources = r
	}
	if len(resources) == 0 {
		return errors.New("an Allow statement without a Resource")
	}
	for _, r := range resources {
		s, ok := r.(string)
		if !ok {
			return errors.New("a Resource that is not a string")
		}
		if !strings.Contains(s, ActorOmniPlaceholder) && strings.ContainsAny(s, "*?") {
			return fmt.Errorf("the Resource %q has a wildcard that does not name %s", s, ActorOmniPlaceholder)
		}
	}
	return nil
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
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return nil, fmt.Errorf("sts.endpoint %q: port %q is not 1..65535", endpoint, port)
		}
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

// Package config is the enclave's configuration file: baked into the image
// (so PCR2 covers it), strictly decoded and validated, and hashed into the
// attestation document's user_data.
package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// MaxSize bounds the configuration file.
const MaxSize = 1 << 20

// Config is the enclave's configuration.
type Config struct {
	// SignerID names the deployment; requests' aud must equal it.
	SignerID string `json:"signer_id"`
	// TrustDomain is the SPIFFE trust domain of caller certificates.
	TrustDomain string `json:"trust_domain"`
	// CallerCA is the PEM bundle that caller certificate chains must
	// verify against.
	CallerCA string `json:"caller_ca_pem"`
	// Roles maps a role (the SPIFFE ID's path) to the methods it may call
	// ("v1/derive-address", "dev/sign-message", ...).
	Roles map[string][]string `json:"roles"`
	// ReplayWindow bounds |iat - now|, as a Go duration ("60s").
	ReplayWindow string `json:"replay_window"`
	// DevSurface turns on the compatibility routes under /dev.
	DevSurface bool `json:"dev_surface"`
	// Limits bound the enclave's work.
	Limits Limits `json:"limits"`
	// Policy restricts what the signing methods sign.
	Policy Policy `json:"policy"`
	// Sealing says how the keyring is sealed; absent, it is not sealed at
	// all and no method can change the keyring.
	Sealing Sealing `json:"sealing"`
	// Peers are the other enclave images this one exchanges keyrings with
	// (keys/peer-*), as a releases.json document: {"releases": [...]},
	// read by attestation.ParseReleases. Absent, only enclaves of this
	// image's own PCR0, PCR1 and PCR2 are peers. See peers.go.
	Peers json.RawMessage `json:"peers"`
	// OIDC makes the enclave an OpenID Connect issuer; absent, the OIDC
	// methods do not exist. See oidc.go.
	OIDC *OIDC `json:"oidc"`
	// STS lets the enclave exchange its tokens for AWS credentials
	// itself; absent, v1/sts-credentials does not exist. See sts.go.
	STS *STS `json:"sts"`

	// Derived at Load.
	Hash       [32]byte       `json:"-"`
	CallerPool *x509.CertPool `json:"-"`
	Window     time.Duration  `json:"-"`
	// PeerReleases are the releases Peers names; nil when it is absent.
	PeerReleases *attestation.Releases `json:"-"`
	allowed      map[string]map[string]bool
}

// Limits bound the enclave's work.
type Limits struct {
	// InFlight bounds concurrent calls per channel connection.
	InFlight int `json:"in_flight"`
	// ReplayEntries bounds remembered nonces per generation.
	ReplayEntries int `json:"replay_entries"`
	// ReplayCallerShare bounds the nonces one caller (certificate) may
	// hold in a generation; by default half of ReplayRoleShare. The
	// callers of one role together hold at most ReplayRoleShare,
	// ReplayEntries divided by the number of roles.
	ReplayCallerShare int `json:"replay_entries_per_caller"`
	ReplayRoleShare   int `json:"-"`
}

// Policy restricts what the signing methods sign. An empty list allows
// everything of its kind.
type Policy struct {
	// SIWEDomains are the EIP-4361 domains sign/siwe signs for.
	SIWEDomains []string `json:"siwe_domains"`
	// ChainIDs are the chain ids SIWE messages and EIP-712 domains may name.
	ChainIDs []uint64 `json:"chain_ids"`
	// VerifyingContracts are the EIP-712 verifying contracts allowed.
	VerifyingContracts []string `json:"verifying_contracts"`
	// ClockSkew is how far in the future a SIWE issued-at may be ("60s").
	ClockSkew string `json:"clock_skew"`

	Skew time.Duration `json:"-"`
}

// Sealing kinds.
const (
	SealingNone = "none"
	SealingKMS  = "kms"
	SealingDev  = "dev"
)

// Sealing configures the sealer.
type Sealing struct {
	// Kind is "kms" (production), "dev" (development builds only) or
	// "none"; empty means "none".
	Kind string `json:"kind"`
	KMS  KMS    `json:"kms"`
}

// KMS configures the KMS sealer.
type KMS struct {
	// KeyID is the KMS key's full key ARN,
	// arn:<partition>:kms:<region>:<account>:key/<id>. Alias names, alias
	// ARNs and bare key ids are refused: AWS resolves an alias name or a
	// bare id in the account of the credentials that sign the call, and
	// those come from the parent; an alias ARN's target can be moved
	// without changing the image.
	KeyID string `json:"key_id"`
	// Region is the key's region; empty means the ARN's, and anything else
	// must equal it.
	Region string `json:"region"`
	// Endpoint is KMS's https URL; empty means https://kms.<region>.<dns
	// suffix of the partition>. An AWS host (under amazonaws.com or
	// amazonaws.com.cn) must be KMS's in the key's region and partition:
	// kms., kms-fips. or a VPC endpoint's <id>.kms.<region>.vpce.; any
	// other host (a private name of a VPC endpoint, a test KMS) is the
	// image's choice, covered by PCR2 like the rest of this file.
	Endpoint string `json:"endpoint"`
	// CAPEM is the roots the endpoint's TLS certificate must chain to (the
	// enclave image has no system roots): Amazon Root CA 1 for AWS.
	CAPEM string `json:"ca_pem"`

	Roots *x509.CertPool `json:"-"`
	URL   *url.URL       `json:"-"`
	ARN   KeyARN         `json:"-"`
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)

func (s *Sealing) validate() error {
	switch s.Kind {
	case "", SealingNone:
		s.Kind = SealingNone
		return nil
	case SealingDev:
		return nil
	case SealingKMS:
	default:
		return fmt.Errorf("sealing.kind %q: want kms, dev or none", s.Kind)
	}
	k := &s.KMS
	arn, err := ParseKeyARN(k.KeyID)
	if err != nil {
		return fmt.Errorf("sealing.kms.key_id: %w", err)
	}
	k.ARN = arn
	if k.Region == "" {
		k.Region = arn.Region
	}
	if k.Region != arn.Region {
		return fmt.Errorf("sealing.kms.region %q: %w: the key is in %s", k.Region, ErrKMSEndpoint, arn.Region)
	}
	if k.URL, err = kmsEndpoint(k.Endpoint, arn); err != nil {
		return err
	}
	k.Roots = x509.NewCertPool()
	if !k.Roots.AppendCertsFromPEM([]byte(k.CAPEM)) {
		return errors.New("sealing.kms.ca_pem: no certificate (the enclave has no system roots)")
	}
	return nil
}

var (
	signerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)
	rolePattern     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	addressPattern  = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
)

// Load reads, decodes and validates a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b)
}

// Parse decodes and validates configuration bytes.
func Parse(b []byte) (*Config, error) {
	var c Config
	if err := strictjson.Decode(b, &c, MaxSize); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Hash = sha256.Sum256(b)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &c, nil
}

func (c *Config) validate() error {
	if !signerIDPattern.MatchString(c.SignerID) {
		return fmt.Errorf("signer_id %q: want [a-z0-9.-], 1..63 characters", c.SignerID)
	}
	if !signerIDPattern.MatchString(c.TrustDomain) {
		return fmt.Errorf("trust_domain %q: want a DNS-like name", c.TrustDomain)
	}
	c.CallerPool = x509.NewCertPool()
	rest, n := []byte(c.CallerCA), 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("caller_ca_pem: %v", err)
		}
		if !cert.IsCA {
			return errors.New("caller_ca_pem: certificate is not a CA")
		}
		c.CallerPool.AddCert(cert)
		n++
	}
	if n == 0 {
		return errors.New("caller_ca_pem: no certificate")
	}
	window := c.ReplayWindow
	if window == "" {
		window = envelope.DefaultWindow.String()
	}
	d, err := time.ParseDuration(window)
	if err != nil || d < time.Second || d > 10*time.Minute {
		return fmt.Errorf("replay_window %q: want a duration in 1s..10m", c.ReplayWindow)
	}
	c.Window = d
	if err := c.Sealing.validate(); err != nil {
		return err
	}
	if len(c.Roles) == 0 {
		return errors.New("roles: none defined")
	}
	c.allowed = map[string]map[string]bool{}
	for role, methods := range c.Roles {
		if !rolePattern.MatchString(role) {
			return fmt.Errorf("roles: %q is not a role name", role)
		}
		c.allowed[role] = map[string]bool{}
		for _, m := range methods {
			if c.allowed[role][m] {
				return fmt.Errorf("roles: %s lists %s twice", role, m)
			}
			c.allowed[role][m] = true
		}
	}
	skew := c.Policy.ClockSkew
	if skew == "" {
		skew = "60s"
	}
	if c.Policy.Skew, err = time.ParseDuration(skew); err != nil || c.Policy.Skew < 0 || c.Policy.Skew > 10*time.Minute {
		return fmt.Errorf("policy.clock_skew %q: want a duration in 0..10m", c.Policy.ClockSkew)
	}
	for _, a := range c.Policy.VerifyingContracts {
		if !addressPattern.MatchString(a) {
			return fmt.Errorf("policy.verifying_contracts: %q is not a 0x address", a)
		}
	}
	for _, d := range c.Policy.SIWEDomains {
		if d == "" || len(d) > 253 {
			return fmt.Errorf("policy.siwe_domains: %q", d)
		}
	}
	if err := c.checkSurfaceOverlap(); err != nil {
		return err
	}
	if err := c.parsePeers(); err != nil {
		return err
	}
	if c.OIDC != nil {
		if err := c.OIDC.validate(); err != nil {
			return err
		}
	}
	if c.STS != nil {
		if err := c.STS.validate(c); err != nil {
			return err
		}
	}
	if c.Limits.InFlight < 0 || c.Limits.InFlight > channel.MaxInFlight {
		return fmt.Errorf("limits.in_flight %d: want 0..%d", c.Limits.InFlight, channel.MaxInFlight)
	}
	if c.Limits.ReplayEntries == 0 {
		c.Limits.ReplayEntries = envelope.DefaultReplayEntries
	}
	if c.Limits.ReplayEntries < 1024 || c.Limits.ReplayEntries > 1<<24 {
		return fmt.Errorf("limits.replay_entries %d: want 1024..16777216", c.Limits.ReplayEntries)
	}
	// No role can fill the replay cache for another: each holds at most
	// its equal part.
	c.Limits.ReplayRoleShare = c.Limits.ReplayEntries / max(1, len(c.Roles))
	if c.Limits.ReplayCallerShare == 0 {
		c.Limits.ReplayCallerShare = max(1, c.Limits.ReplayRoleShare/2)
	}
	if c.Limits.ReplayCallerShare < 1 || c.Limits.ReplayCallerShare > c.Limits.ReplayRoleShare {
		return fmt.Errorf("limits.replay_entries_per_caller %d: want 1..%d (limits.replay_entries divided by the %d roles)",
			c.Limits.ReplayCallerShare, c.Limits.ReplayRoleShare, len(c.Roles))
	}
	return nil
}

// Methods whose signatures another route can produce without their checks:
// dev/sign-message signs EIP-191 of any bytes, and v1/sign/audit-row signs
// EIP-191 of keccak256(row), 32 bytes, with the same wallet key. Through
// dev/sign-message a caller could sign the digest of any row, deterministic
// CBOR or not, or of no row at all. What audit-row signs cannot change
// without breaking the calling system's verifiers, so a configuration that
// serves both is refused. (sign/siwe's overlap is closed in the service:
// dev/sign-message holds an EIP-4361 message to the same checks.)
const (
	devSignMessage = "dev/sign-message"
	signAuditRow   = "v1/sign/audit-row"
)

// ErrSurfaceOverlap marks a configuration whose compatibility surface would
// sign what a checked method signs, without the checks.
var ErrSurfaceOverlap = errors.New("dev_surface would bypass a signing method's checks")

func (c *Config) checkSurfaceOverlap() error {
	if !c.DevSurface {
		return nil // the dev routes do not exist
	}
	dev, rows := c.rolesAllowed(devSignMessage), c.rolesAllowed(signAuditRow)
	if len(dev) == 0 || len(rows) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s signs any 32 bytes as %s signs a row's keccak256 (roles %v may call %s, roles %v %s): "+
		"turn dev_surface off or allow only one of them", ErrSurfaceOverlap, devSignMessage, signAuditRow, dev, devSignMessage, rows, signAuditRow)
}

// rolesAllowed lists the roles that may call method, sorted.
func (c *Config) rolesAllowed(method string) []string {
	var out []string
	for role, methods := range c.allowed {
		if methods[method] {
			out = append(out, role)
		}
	}
	sort.Strings(out)
	return out
}

// CheckMethods fails if a role names a method that is not in known.
func (c *Config) CheckMethods(known map[string]bool) error {
	var unknown []string
	for role, methods := range c.Roles {
		for _, m := range methods {
			if !known[m] {
				unknown = append(unknown, role+":"+m)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config: roles name unknown methods %v", unknown)
	}
	return nil
}

// Allowed reports whether role may call method.
func (c *Config) Allowed(role, method string) bool { return c.allowed[role][method] }

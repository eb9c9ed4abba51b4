package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// OIDC configures the enclave as an OpenID Connect issuer
// (v1/oidc/discovery, v1/oidc-token). Absent, neither method exists.
type OIDC struct {
	// Issuer is the issuer URL, the tokens' iss: https, a host, no
	// userinfo, query or fragment, no trailing slash. It must be served
	// from a place the parent cannot write (docs/threat-model.md).
	Issuer string `json:"issuer"`
	// Audiences are the aud values a token may be minted for
	// ("sts.amazonaws.com"), 1..16, unique.
	Audiences []string `json:"audiences"`
	// JWKSURI is where the JWKS is served; empty means
	// Issuer + "/.well-known/jwks.json".
	JWKSURI string `json:"jwks_uri"`
	// MinTTL and MaxTTL bound a token's lifetime in seconds; 0 means 60
	// and 3600. MaxTTL is at most 43200.
	MinTTL int64 `json:"min_ttl"`
	MaxTTL int64 `json:"max_ttl"`
}

// Bounds of the OIDC member.
const (
	DefaultOIDCMinTTL = 60
	DefaultOIDCMaxTTL = 3600
	MaxOIDCTTL        = 43200
	MaxOIDCAudiences  = 16
	maxOIDCURL        = 255 // IAM's limit on a provider URL
	maxOIDCAudience   = 255
)

// ErrOIDCURL marks an issuer or jwks_uri that is not an https URL of the
// form an issuer needs.
var ErrOIDCURL = errors.New("not an https URL with a lower-case host, no port 443 spelled out, userinfo, query, fragment, percent-escape, trailing slash, empty or dot segment")

func (o *OIDC) validate() error {
	if err := checkIssuerURL(o.Issuer); err != nil {
		return fmt.Errorf("oidc.issuer %q: %w", o.Issuer, err)
	}
	if o.JWKSURI == "" {
		o.JWKSURI = o.Issuer + "/.well-known/jwks.json"
	}
	if err := checkIssuerURL(o.JWKSURI); err != nil {
		return fmt.Errorf("oidc.jwks_uri %q: %w", o.JWKSURI, err)
	}
	// IAM trusts the host of the JWKS as it does the issuer's: one place,
	// under the issuer, that the parent cannot write.
	if !strings.HasPrefix(o.JWKSURI, o.Issuer+"/") {
		return fmt.Errorf("oidc.jwks_uri %q: not under the issuer %q", o.JWKSURI, o.Issuer)
	}
	if len(o.Audiences) == 0 || len(o.Audiences) > MaxOIDCAudiences {
		return fmt.Errorf("oidc.audiences: %d, want 1..%d", len(o.Audiences), MaxOIDCAudiences)
	}
	seen := map[string]bool{}
	for _, a := range o.Audiences {
		if a == "" || len(a) > maxOIDCAudience || !printable(a) {
			return fmt.Errorf("oidc.audiences: %q is not 1..%d printable ASCII characters", a, maxOIDCAudience)
		}
		if seen[a] {
			return fmt.Errorf("oidc.audiences: %q twice", a)
		}
		seen[a] = true
	}
	if o.MinTTL == 0 {
		o.MinTTL = DefaultOIDCMinTTL
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultOIDCMaxTTL
	}
	if o.MinTTL < 1 || o.MaxTTL > MaxOIDCTTL || o.MinTTL > o.MaxTTL {
		return fmt.Errorf("oidc.min_ttl %d, oidc.max_ttl %d: want 1 <= min_ttl <= max_ttl <= %d", o.MinTTL, o.MaxTTL, MaxOIDCTTL)
	}
	return nil
}

// checkIssuerURL accepts https://host[:port][/path] as OpenID Connect
// Discovery §3 and IAM require an issuer: no userinfo, query or fragment,
// no trailing slash; no percent-escape either (an issuer is compared as a
// string, so it has one spelling), and written as net/url writes it back.
func checkIssuerURL(s string) error {
	if s == "" || len(s) > maxOIDCURL || !printable(s) || strings.ContainsAny(s, "?#%") {
		return ErrOIDCURL
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Opaque != "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(s, "/") || u.String() != s {
		return ErrOIDCURL
	}
	// One spelling only: clients normalise the others, and the files an
	// operator uploads under one spelling are not where they look.
	if port := u.Port(); strings.HasSuffix(u.Host, ":") || port == "443" || (port != "" && port[0] == '0') ||
		u.Host != strings.ToLower(u.Host) {
		return ErrOIDCURL // an empty port, 443 spelled out, a port with leading zeros, upper case
	}
	for _, seg := range strings.Split(strings.TrimPrefix(u.Path, "/"), "/") {
		if u.Path != "" && (seg == "" || seg == "." || seg == "..") {
			return ErrOIDCURL
		}
	}
	return nil
}

// printable: ASCII 0x21..0x7e only (no space, no control character).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

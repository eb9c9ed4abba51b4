package config_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// withOIDC is the development configuration with its oidc member replaced
// by o (removed when o is nil).
func withOIDC(t *testing.T, b []byte, o any) []byte {
	return edit(t, b, func(m map[string]any) {
		if o == nil {
			delete(m, "oidc")
			return
		}
		m["oidc"] = o
	})
}

func oidcMember(mutate func(map[string]any)) map[string]any {
	o := map[string]any{"issuer": "https://oidc.example.com", "audiences": []string{"sts.amazonaws.com"}}
	mutate(o)
	return o
}

func TestParseOIDC(t *testing.T) {
	b := devConfig(t)
	c, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.OIDC{Issuer: devpki.OIDCIssuer, Audiences: []string{devpki.OIDCAudience},
		JWKSURI: devpki.OIDCIssuer + "/.well-known/jwks.json", MinTTL: 60, MaxTTL: 3600}
	if c.OIDC == nil || fmt.Sprint(*c.OIDC) != fmt.Sprint(*want) {
		t.Fatalf("development oidc member: %+v, want %+v", c.OIDC, want)
	}
	if !c.Allowed("worker", "v1/oidc-token") || !c.Allowed("admin", "v1/oidc/discovery") || c.Allowed("admin", "v1/oidc-token") ||
		c.Allowed("peer", "v1/oidc/discovery") {
		t.Fatal("development roles and the oidc methods")
	}
	c, err = config.Parse(withOIDC(t, b, nil))
	if err != nil || c.OIDC != nil {
		t.Fatalf("absent oidc: %+v, %v", c.OIDC, err)
	}
	c, err = config.Parse(withOIDC(t, b, oidcMember(func(o map[string]any) {
		o["issuer"] = "https://d111111abcdef8.cloudfront.net/signer/prod"
		o["jwks_uri"] = "https://d111111abcdef8.cloudfront.net/signer/prod/keys/jwks"
		o["audiences"] = []string{"sts.amazonaws.com", "other"}
		o["min_ttl"], o["max_ttl"] = 900, 43200
	})))
	if err != nil || c.OIDC.JWKSURI != "https://d111111abcdef8.cloudfront.net/signer/prod/keys/jwks" || c.OIDC.MinTTL != 900 || c.OIDC.MaxTTL != 43200 ||
		len(c.OIDC.Audiences) != 2 {
		t.Fatalf("explicit oidc: %+v, %v", c.OIDC, err)
	}
	sixteen := make([]string, 16)
	for i := range sixteen {
		sixteen[i] = fmt.Sprintf("aud-%d", i)
	}
	if _, err := config.Parse(withOIDC(t, b, oidcMember(func(o map[string]any) { o["audiences"] = sixteen }))); err != nil {
		t.Fatalf("16 audiences: %v", err)
	}
}

func TestParseOIDCRefuses(t *testing.T) {
	b := devConfig(t)
	issuer := func(s string) map[string]any { return oidcMember(func(o map[string]any) { o["issuer"] = s }) }
	jwks := func(s string) map[string]any { return oidcMember(func(o map[string]any) { o["jwks_uri"] = s }) }
	ttl := func(lo, hi any) map[string]any {
		return oidcMember(func(o map[string]any) { o["min_ttl"], o["max_ttl"] = lo, hi })
	}
	aud := func(a any) map[string]any { return oidcMember(func(o map[string]any) { o["audiences"] = a }) }
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = fmt.Sprintf("aud-%d", i)
	}
	tests := map[string]any{
		"bad_empty_member":            map[string]any{},
		"bad_unknown_field":           oidcMember(func(o map[string]any) { o["role_arns"] = []string{} }),
		"bad_not_an_object":           "https://oidc.example.com",
		"bad_issuer_empty":            issuer(""),
		"bad_issuer_http":             issuer("http://oidc.example.com"),
		"bad_issuer_no_scheme":        issuer("oidc.example.com"),
		"bad_issuer_no_host":          issuer("https:///path"),
		"bad_issuer_port_only":        issuer("https://:443"),
		"bad_issuer_dot_dot_segment":  issuer("https://oidc.example.com/a/../b"),
		"bad_issuer_dot_segment":      issuer("https://oidc.example.com/./x"),
		"bad_issuer_empty_segment":    issuer("https://oidc.example.com//x"),
		"bad_issuer_upper_case_host":  issuer("https://OIDC.Example.com/x"),
		"bad_issuer_port_443":         issuer("https://oidc.example.com:443/x"),
		"bad_issuer_port_leading_0":   issuer("https://oidc.example.com:0443/x"),
		"bad_issuer_empty_port":       issuer("https://oidc.example.com:/x"),
		"bad_jwks_uri_another_host":   oidcMember(func(o map[string]any) { o["jwks_uri"] = "https://keys.example.com/jwks" }),
		"bad_jwks_uri_sibling_prefix": oidcMember(func(o map[string]any) { o["jwks_uri"] = "https://oidc.example.com.evil/jwks" }),
		"bad_issuer_userinfo":         issuer("https://user:pw@oidc.example.com"),
		"bad_issuer_query":            issuer("https://oidc.example.com/?a=b"),
		"bad_issuer_empty_query":      issuer("https://oidc.example.com?"),
		"bad_issuer_fragment":         issuer("https://oidc.example.com#x"),
		"bad_issuer_trailing_slash":   issuer("https://oidc.example.com/"),
		"bad_issuer_path_slash":       issuer("https://oidc.example.com/a/"),
		"bad_issuer_space":            issuer("https://oidc.example.com/a b"),
		"bad_issuer_percent_escape":   issuer("https://oidc.example.com/%61"),
		"bad_issuer_opaque":           issuer("https:oidc.example.com"),
		"bad_issuer_too_long":         issuer("https://oidc.example.com/" + strings.Repeat("a", 240)),
		"bad_issuer_uppercase_scheme": issuer("HTTPS://oidc.example.com"),
		"bad_jwks_uri_http":           jwks("http://oidc.example.com/jwks"),
		"bad_jwks_uri_query":          jwks("https://oidc.example.com/jwks?v=1"),
		"bad_jwks_uri_fragment":       jwks("https://oidc.example.com/jwks#k"),
		"bad_jwks_uri_userinfo":       jwks("https://u@oidc.example.com/jwks"),
		"bad_audiences_absent":        oidcMember(func(o map[string]any) { delete(o, "audiences") }),
		"bad_audiences_empty":         aud([]string{}),
		"bad_audiences_too_many":      aud(seventeen),
		"bad_audience_empty":          aud([]string{"sts.amazonaws.com", ""}),
		"bad_audience_twice":          aud([]string{"sts.amazonaws.com", "sts.amazonaws.com"}),
		"bad_audience_space":          aud([]string{"sts amazonaws com"}),
		"bad_audience_control":        aud([]string{"sts\n"}),
		"bad_audience_too_long":       aud([]string{strings.Repeat("a", 256)}),
		"bad_audience_not_string":     aud([]any{1}),
		"bad_min_ttl_negative":        ttl(-1, 3600),
		"bad_max_ttl_negative":        ttl(60, -5),
		"bad_max_ttl_above_12h":       ttl(60, 43201),
		"bad_min_above_max":           ttl(600, 300),
		"bad_min_above_default_max":   ttl(3601, 0),
		"bad_ttl_fraction":            ttl(60.5, 3600),
		"bad_ttl_string":              ttl("60s", 3600),
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			if c, err := config.Parse(withOIDC(t, b, o)); err == nil {
				t.Fatalf("Parse accepted oidc %+v", c.OIDC)
			}
		})
	}
	t.Run("bad_duplicate_member", func(t *testing.T) {
		in := strings.Replace(string(b), `"oidc": {`, `"oidc": {"issuer": "https://other.example.com", "audiences": ["a"]}, "oidc": {`, 1)
		if in == string(b) {
			t.Fatal("the development configuration has no oidc member")
		}
		if _, err := config.Parse([]byte(in)); err == nil {
			t.Fatal("Parse accepted two oidc members")
		}
	})
	t.Run("bad_duplicate_issuer", func(t *testing.T) {
		in := strings.Replace(string(b), `"issuer": "`, `"issuer": "https://other.example.com", "issuer": "`, 1)
		if _, err := config.Parse([]byte(in)); err == nil {
			t.Fatal("Parse accepted two issuers")
		}
	})
}

// FuzzParseOIDC fuzzes the oidc member inside the development
// configuration. Invariants: no panic, and whatever is accepted is an
// issuer the methods can serve.
func FuzzParseOIDC(f *testing.F) {
	dev := devConfig(f)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(dev, &m); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(m["oidc"]))
	f.Add([]byte(`{"issuer":"https://a.example/p","audiences":["x","y"],"jwks_uri":"https://b.example/k","min_ttl":1,"max_ttl":43200}`))
	f.Add([]byte(`{"issuer":"https://a.example/","audiences":["x"]}`))
	f.Add([]byte(`{"issuer":"https://a.example","audiences":["x","x"],"min_ttl":9e9}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, member []byte) {
		m2 := map[string]json.RawMessage{}
		for k, v := range m {
			m2[k] = v
		}
		m2["oidc"] = member
		b, err := json.Marshal(m2)
		if err != nil {
			return // not JSON: the splice is not a configuration
		}
		c, err := config.Parse(b)
		if err != nil || c.OIDC == nil {
			return
		}
		o := c.OIDC
		for _, s := range []string{o.Issuer, o.JWKSURI} {
			u, err := url.Parse(s)
			if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
				strings.HasSuffix(s, "/") {
				t.Fatalf("accepted URL %q", s)
			}
		}
		if len(o.Audiences) < 1 || len(o.Audiences) > 16 || slices.Contains(o.Audiences, "") ||
			len(slices.Compact(slices.Sorted(slices.Values(o.Audiences)))) != len(o.Audiences) {
			t.Fatalf("accepted audiences %q", o.Audiences)
		}
		if o.MinTTL < 1 || o.MinTTL > o.MaxTTL || o.MaxTTL > 43200 {
			t.Fatalf("accepted ttl %d..%d", o.MinTTL, o.MaxTTL)
		}
	})
}

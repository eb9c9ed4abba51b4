package envelope_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// rawURICaller issues a client certificate whose URI SANs are exactly uris,
// as bytes: crypto/x509 would write a url.URL's String(), which normalises.
func (p pki) rawURICaller(t *testing.T, uris ...string) caller {
	t.Helper()
	var names []asn1.RawValue
	for _, u := range uris {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)})
	}
	san, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "c"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}}}
	cert, key, err := devpki.Issue(tmpl, p.ca, p.key, now)
	if err != nil {
		t.Fatal(err)
	}
	return caller{signer: key, leaf: cert.Raw, chain: [][]byte{cert.Raw}}
}

// TestSPIFFEIDRoleIsExact is issue 13 finding 10: the role was read from
// the URL's percent-decoded path, so spiffe://td/%61dmin authenticated as
// admin. A caller's certificate must carry exactly one URI SAN, a SPIFFE ID
// as the SPIFFE-ID specification writes it, of exactly the form
// spiffe://<trust domain>/<role>.
func TestSPIFFEIDRoleIsExact(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name string
		uris []string
		role string // "" when refused
	}{
		{"role", []string{"spiffe://td/admin"}, "admin"},
		{"role_with_digits_and_dash", []string{"spiffe://td/worker-2"}, "worker-2"},
		{"bad_percent_encoded", []string{"spiffe://td/%61dmin"}, ""},
		{"bad_percent_encoded_slash", []string{"spiffe://td/x%2Fadmin"}, ""},
		{"bad_query", []string{"spiffe://td/admin?x=1"}, ""},
		{"bad_empty_query", []string{"spiffe://td/admin?"}, ""},
		{"bad_fragment", []string{"spiffe://td/admin#x"}, ""},
		{"bad_empty_fragment", []string{"spiffe://td/admin#"}, ""},
		{"bad_empty_segment", []string{"spiffe://td//admin"}, ""},
		{"bad_dot_segment", []string{"spiffe://td/./admin"}, ""},
		{"bad_dot_dot_segment", []string{"spiffe://td/x/../admin"}, ""},
		{"bad_trailing_slash", []string{"spiffe://td/admin/"}, ""},
		{"bad_uppercase_scheme", []string{"SPIFFE://td/admin"}, ""},
		{"bad_mixed_case_scheme", []string{"Spiffe://td/admin"}, ""},
		{"bad_uppercase_host", []string{"spiffe://TD/admin"}, ""},
		{"bad_uppercase_role", []string{"spiffe://td/Admin"}, ""},
		{"bad_port", []string{"spiffe://td:443/admin"}, ""},
		{"bad_userinfo", []string{"spiffe://admin@td/admin"}, ""},
		{"bad_two_segments", []string{"spiffe://td/x/admin"}, ""},
		{"bad_no_path", []string{"spiffe://td"}, ""},
		{"bad_root_path", []string{"spiffe://td/"}, ""},
		{"bad_other_trust_domain", []string{"spiffe://td.evil/admin"}, ""},
		{"bad_no_authority", []string{"spiffe:/td/admin"}, ""},
		{"bad_opaque", []string{"spiffe:td/admin"}, ""},
		{"bad_two_spiffe_ids", []string{"spiffe://td/broker", "spiffe://td/admin"}, ""},
		{"bad_spiffe_id_and_another_uri", []string{"spiffe://td/admin", "https://td/admin"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.rawURICaller(t, tc.uris...)
			got, err := verifier(p).Verify("v1/m", sign(t, c, nil), c.chain)
			if tc.role != "" {
				if err != nil || got.Caller.Role != tc.role || got.Caller.ID != tc.uris[0] {
					t.Fatalf("Verify: %+v, %v; want role %s", got, err, tc.role)
				}
				return
			}
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.CodeUnauthenticated {
				role := ""
				if got != nil {
					role = got.Caller.Role
				}
				t.Fatalf("Verify: role %q, %v; want %s", role, err, api.CodeUnauthenticated)
			}
		})
	}
}

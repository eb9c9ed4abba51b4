package e2e

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// otherOmni is a second omni account: an attack succeeds when the enclave
// acts for it although the caller's broker saw omniHex.
const otherOmni = "1111111111111111111111111111111111111111111111111111111111111111"

// typedDataDoc is an EIP-712 document whose domain is given by the caller.
func typedDataDoc(domain string) json.RawMessage {
	return json.RawMessage(`{"types":{"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],` +
		`"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},` +
		`"primaryType":"Mail","domain":` + domain + `,` +
		`"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},` +
		`"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}`)
}

// TestKeysEqualUnderCaseFoldingAreRefused is issue 13 finding 7 against the
// real binaries: a broker, an audit pipeline or a policy engine in front of
// the signer that reads JSON case-sensitively sees omni_account = A, while
// encoding/json matched OMNI_ACCOUNT to the same field and let the last one
// win, so the enclave signed for B. Every such request is now refused: two
// keys equal under case folding anywhere in the signed payload make it
// bad_request before any method sees it; a key in another case than its
// field is refused by the decoder of the part that holds it (bad_request
// for params, invalid_typed_data inside typed_data).
func TestKeysEqualUnderCaseFoldingAreRefused(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	domain := `{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}`
	typed := func(td json.RawMessage) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"actor_omni": omniHex, "typed_data": td})
		return b
	}
	tests := []struct {
		name   string
		method string
		params json.RawMessage
		want   api.Code // "" for a control that must succeed
	}{
		{"dev_params_exact", "dev/derive-address", json.RawMessage(`{"omni_account":"` + omniHex + `"}`), ""},
		{"bad_dev_params_keys_equal_under_case_folding", "dev/derive-address",
			json.RawMessage(`{"omni_account":"` + omniHex + `","OMNI_ACCOUNT":"` + otherOmni + `"}`), api.CodeBadRequest},
		{"bad_dev_params_field_in_other_case", "dev/derive-address",
			json.RawMessage(`{"OMNI_ACCOUNT":"` + otherOmni + `"}`), api.CodeBadRequest},
		{"bad_dev_params_field_in_other_case_kelvin", "dev/sign-message",
			json.RawMessage(`{"omni_account":"` + omniHex + `","message_hex":"0x00","message_\u212aind":"x"}`), api.CodeBadRequest},
		{"v1_params_exact", "v1/derive-address", json.RawMessage(`{"operator_omni":"` + omniHex + `"}`), ""},
		{"bad_v1_params_keys_equal_under_case_folding", "v1/derive-address",
			json.RawMessage(`{"operator_omni":"` + omniHex + `","Operator_Omni":"` + otherOmni + `"}`), api.CodeBadRequest},
		{"bad_v1_params_field_in_other_case", "v1/derive-address",
			json.RawMessage(`{"Operator_Omni":"` + otherOmni + `"}`), api.CodeBadRequest},
		{"typed_data_exact", "v1/sign/typed-data", typed(typedDataDoc(domain)), ""},
		{"bad_typed_data_domain_keys_equal_under_case_folding", "v1/sign/typed-data",
			typed(typedDataDoc(strings.Replace(domain, `"chainId":1`, `"chainId":1,"chainID":137`, 1))), api.CodeBadRequest},
		{"bad_typed_data_domain_field_in_other_case", "v1/sign/typed-data",
			typed(typedDataDoc(strings.Replace(domain, `"chainId"`, `"chainID"`, 1))), api.CodeInvalidTypedData},
		{"bad_typed_data_type_field_in_other_case", "v1/sign/typed-data",
			typed(json.RawMessage(strings.Replace(string(typedDataDoc(domain)), `{"name":"contents","type":"string"}`, `{"name":"contents","Type":"string"}`, 1))), api.CodeInvalidTypedData},
		{"bad_typed_data_message_keys_equal_under_case_folding", "v1/sign/typed-data",
			typed(json.RawMessage(strings.Replace(string(typedDataDoc(domain)), `"contents":"Hello, Bob!"`, `"contents":"Hello, Bob!","Contents":"Pay Eve"`, 1))), api.CodeBadRequest},
		{"bad_dev_typed_data_domain_keys_equal_under_case_folding", "dev/sign-typed-data",
			mustJSON(t, map[string]any{"omni_account": omniHex, "typed_data": typedDataDoc(strings.Replace(domain, `"chainId":1`, `"chainId":1,"chainID":137`, 1))}), api.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var result json.RawMessage
			err := c.Call(ctx(t), tt.method, tt.params, &result)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("control refused: %v", err)
				}
				return
			}
			var refusal *api.Error
			if !errors.As(err, &refusal) || refusal.Code != tt.want {
				t.Fatalf("Call: %v (result %s), want a signed refusal %s", err, result, tt.want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newEnvOwnCallerCA is newEnv with a caller CA whose key the test holds, so
// it can issue caller certificates with any SPIFFE ID. issue returns a
// client certificate for uri.
func newEnvOwnCallerCA(t *testing.T) (e *env, issue func(uri string) tls.Certificate) {
	t.Helper()
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	if err := devpki.Generate(pkiDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	ca, caKey, err := devpki.NewCA("test caller CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	if err := os.WriteFile(filepath.Join(pkiDir, devpki.CallerCAFile), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	editConfig(t, filepath.Join(pkiDir, devpki.EnclaveJSON), func(cfg map[string]any) { cfg["caller_ca_pem"] = string(caPEM) })
	issue = func(uri string) tls.Certificate {
		t.Helper()
		// The URI SAN is written as given: crypto/x509 would write a
		// url.URL's String(), which lower-cases the scheme.
		san, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)}})
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := devpki.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "c"},
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
			ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	for role := range devpki.Roles {
		c := issue(fmt.Sprintf("spiffe://%s/%s", devpki.TrustDomain, role))
		keyPEM, err := devpki.PEMKey(c.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
		if err := os.WriteFile(filepath.Join(pkiDir, devpki.ClientCert(role)), certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkiDir, devpki.ClientKey(role)), keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e = &env{t: t, dir: dir, sock: filepath.Join(dir, "enclave.sock")}
	if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
		t.Fatal(err)
	}
	e.startEnclave()
	e.startParent("unix://" + e.sock)
	return e, issue
}

// TestSPIFFEIDIsParsedAsTheSpecificationDefinesIt is issue 13 finding 10
// against the real binaries: a certificate from the caller CA whose SPIFFE
// ID is spiffe://<td>/%61dmin was taken for the admin role, because the
// role was read from the URL's decoded path. Only an ID that is exactly
// spiffe://<trust domain>/<role> names a role.
func TestSPIFFEIDIsParsedAsTheSpecificationDefinesIt(t *testing.T) {
	e, issue := newEnvOwnCallerCA(t)
	td := devpki.TrustDomain
	withCert := func(cert tls.Certificate) func(*client.Config) {
		return func(c *client.Config) { c.Certificate = cert }
	}
	if _, err := e.client("admin").KeyStatus(ctx(t)); err != nil {
		t.Fatalf("control: the genuine admin is refused: %v", err)
	}
	for _, tt := range []struct{ name, uri string }{
		{"bad_percent_encoded_role", "spiffe://" + td + "/%61dmin"},
		{"bad_percent_encoded_whole_role", "spiffe://" + td + "/%61%64%6d%69%6e"},
		{"bad_two_segments", "spiffe://" + td + "/x/admin"},
		{"bad_dot_segment", "spiffe://" + td + "/x/../admin"},
		{"bad_trailing_slash", "spiffe://" + td + "/admin/"},
		{"bad_empty_segment", "spiffe://" + td + "//admin"},
		{"bad_query", "spiffe://" + td + "/admin?x=1"},
		{"bad_fragment", "spiffe://" + td + "/admin#x"},
		{"bad_uppercase_scheme", "SPIFFE://" + td + "/admin"},
		{"bad_port", "spiffe://" + td + ":443/admin"},
		{"bad_userinfo", "spiffe://admin@" + td + "/admin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client("admin", withCert(issue(tt.uri)))
			st, err := c.KeyStatus(ctx(t))
			var refusal *api.Error
			if !errors.As(err, &refusal) || refusal.Code != api.CodeUnauthenticated {
				t.Fatalf("KeyStatus as %s: %v (status %+v), want a signed refusal %s", tt.uri, err, st, api.CodeUnauthenticated)
			}
		})
	}
}

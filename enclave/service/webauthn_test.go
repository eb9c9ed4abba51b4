package service_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
)

type w3cVector struct {
	Name string `json:"name"`
	Auth struct {
		Challenge         string `json:"challenge"`
		AuthenticatorData string `json:"authenticatorData"`
		ClientDataJSON    string `json:"clientDataJSON"`
		Signature         string `json:"signature"`
	} `json:"authentication_hex"`
	Derived struct {
		CredentialID string `json:"credential_id_hex"`
		COSEKey      string `json:"credential_public_key_cose_hex"`
	} `json:"derived_here"`
	Expected struct {
		Notes []string `json:"notes"`
	} `json:"expected"`
}

func (v w3cVector) request(rp, origin string) api.VerifyWebAuthnRequest {
	return api.VerifyWebAuthnRequest{
		CredentialID: v.Derived.CredentialID, PublicKey: v.Derived.COSEKey, RPID: rp, Payload: v.Auth.Challenge,
		AuthenticatorData: v.Auth.AuthenticatorData, ClientDataJSON: v.Auth.ClientDataJSON, Signature: v.Auth.Signature,
		AllowedOrigins: []string{origin},
	}
}

func boolPtr(b bool) *bool { return &b }

func TestWebAuthnW3CVectors(t *testing.T) {
	var file struct {
		RPID     string      `json:"rp_id"`
		Origin   string      `json:"origin"`
		Vectors  []w3cVector `json:"vectors"`
		Negative struct {
			Cases []struct {
				Name     string            `json:"name"`
				Override map[string]string `json:"override"`
			} `json:"cases"`
		} `json:"negative_cases"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "webauthn", "w3c-webauthn-l3-es256.json"), &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != 10 {
		t.Fatalf("%d vectors, want 10", len(file.Vectors))
	}
	h := newHarness(t, nil)
	verify := func(t *testing.T, req api.VerifyWebAuthnRequest) *api.VerifyWebAuthnResponse {
		t.Helper()
		var r api.VerifyWebAuthnResponse
		if err := h.call("v1/verify/k11-assertion", req, &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			// Every assertion is valid once UV and cross-origin are not
			// demanded: the signature and the bindings hold.
			lenient := v.request(file.RPID, file.Origin)
			lenient.RequireUserVerification, lenient.AllowCrossOrigin = boolPtr(false), true
			if r := verify(t, lenient); !r.Valid {
				t.Fatalf("lenient: %s", r.Reason)
			}
			// With the defaults, the notes say which must fail and why.
			r := verify(t, v.request(file.RPID, file.Origin))
			notes := strings.Join(v.Expected.Notes, " ")
			switch {
			case strings.Contains(notes, "crossOrigin is true"):
				if r.Valid || !strings.Contains(r.Reason, "cross-origin") {
					t.Fatalf("cross-origin assertion: %+v", r)
				}
			case strings.Contains(notes, "UV flag is 0"):
				if r.Valid || !strings.Contains(r.Reason, "user verification") {
					t.Fatalf("UV=0 assertion with UV required: %+v", r)
				}
			default:
				if !r.Valid || !r.UserVerified {
					t.Fatalf("strict: %+v", r)
				}
			}
		})
	}
	base := file.Vectors[0]
	for _, n := range file.Negative.Cases {
		t.Run(n.Name, func(t *testing.T) {
			req := base.request(file.RPID, file.Origin)
			req.RequireUserVerification = boolPtr(false)
			switch {
			case n.Override["expected_challenge"] != "":
				req.Payload = hex.EncodeToString([]byte("wrong-challenge"))
			case n.Override["rp_id"] != "":
				req.RPID = n.Override["rp_id"]
			case n.Override["credential_public_key_cose_hex"] != "":
				req.PublicKey = n.Override["credential_public_key_cose_hex"]
			case n.Override["credential_public_key_bytes_utf8"] != "":
				req.PublicKey = hex.EncodeToString([]byte(n.Override["credential_public_key_bytes_utf8"]))
				wantCode(t, h.call("v1/verify/k11-assertion", req, nil), api.CodeBadRequest)
				return
			}
			if r := verify(t, req); r.Valid {
				t.Fatal("accepted")
			}
		})
	}
}

func TestWebAuthnRecordedBrowserAssertions(t *testing.T) {
	var file struct {
		Cases []struct {
			Name      string `json:"name"`
			Challenge string `json:"expected_challenge_b64url"`
			RPID      string `json:"expected_rp_id"`
			Origin    any    `json:"expected_origin"`
			RequireUV bool   `json:"require_user_verification"`
			Derived   struct {
				COSEKey  string `json:"credential_public_key_cose_hex"`
				AuthData string `json:"authenticator_data_hex"`
				CDJSON   string `json:"client_data_json_text"`
				Sig      string `json:"signature_der_hex"`
			} `json:"derived_here"`
			Expected struct {
				Valid     bool   `json:"assertion_valid"`
				SignCount uint32 `json:"new_sign_count"`
			} `json:"expected"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "webauthn", "py_webauthn-es256-assertions.json"), &file); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil)
	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			challenge, err := base64.RawURLEncoding.DecodeString(c.Challenge)
			if err != nil {
				t.Fatal(err)
			}
			var origins []string
			switch o := c.Origin.(type) {
			case string:
				origins = []string{o}
			case []any:
				for _, x := range o {
					origins = append(origins, x.(string))
				}
			}
			req := api.VerifyWebAuthnRequest{
				CredentialID: "00", PublicKey: c.Derived.COSEKey, RPID: c.RPID, Payload: hex.EncodeToString(challenge),
				AuthenticatorData: c.Derived.AuthData, ClientDataJSON: hex.EncodeToString([]byte(c.Derived.CDJSON)),
				Signature: c.Derived.Sig, AllowedOrigins: origins, RequireUserVerification: boolPtr(c.RequireUV),
			}
			var r api.VerifyWebAuthnResponse
			if err := h.call("v1/verify/k11-assertion", req, &r); err != nil {
				t.Fatal(err)
			}
			if r.Valid != c.Expected.Valid {
				t.Fatalf("valid %v (%s), want %v", r.Valid, r.Reason, c.Expected.Valid)
			}
			if !r.Valid && !strings.Contains(r.Reason, "user verification") {
				t.Fatalf("refused for %q, want the UV rule", r.Reason)
			}
			if r.Valid && c.Expected.SignCount != 0 && r.SignCount != c.Expected.SignCount {
				t.Fatalf("sign count %d, want %d", r.SignCount, c.Expected.SignCount)
			}
			// Outside the allowed origins the same assertion is refused.
			req.AllowedOrigins = []string{"https://evil.example"}
			req.RequireUserVerification = boolPtr(false)
			if err := h.call("v1/verify/k11-assertion", req, &r); err != nil || r.Valid {
				t.Fatalf("foreign origin: %+v %v", r, err)
			}
		})
	}
}

package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

// Bounds on a WebAuthn assertion.
const (
	maxCredentialID   = 1023
	maxCOSEKey        = 256
	maxAuthData       = 1024
	maxClientDataJSON = 4096
	maxDERSignature   = 80
	maxOrigins        = 16
)

// Assertion is a decoded WebAuthn assertion with the checks to apply.
type Assertion struct {
	Key               webauthncose.EC2PublicKeyData
	RPID              string
	Challenge         []byte
	AuthenticatorData []byte
	ClientDataJSON    []byte
	Signature         []byte
	AllowedOrigins    []string
	RequireUV         bool
	AllowCrossOrigin  bool
}

func (s *Service) verifyWebAuthn(_ context.Context, r *Request, p *api.VerifyWebAuthnRequest) (*api.VerifyWebAuthnResponse, error) {
	a, err := assertionOf(p)
	if err != nil {
		return nil, err
	}
	return a.Verify()
}

// assertionOf checks the params of v1/verify/k11-assertion and decodes them.
func assertionOf(p *api.VerifyWebAuthnRequest) (*Assertion, error) {
	if _, err := unhexParam("cred_id", p.CredentialID, maxCredentialID); err != nil {
		return nil, err
	}
	keyBytes, err := unhexParam("public_key", p.PublicKey, maxCOSEKey)
	if err != nil {
		return nil, err
	}
	parsed, err := webauthncose.ParsePublicKey(keyBytes)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "public_key is not a COSE key")
	}
	key, ok := parsed.(webauthncose.EC2PublicKeyData)
	if !ok || key.Algorithm != int64(webauthncose.AlgES256) || key.Curve != int64(webauthncose.P256) {
		return nil, api.Errorf(api.CodeBadRequest, "public_key must be an ES256 P-256 COSE key")
	}
	if p.RPID == "" || len(p.RPID) > 253 {
		return nil, api.Errorf(api.CodeBadRequest, "rp_id is required")
	}
	if len(p.AllowedOrigins) > maxOrigins {
		return nil, api.Errorf(api.CodeBadRequest, "more than %d allowed origins", maxOrigins)
	}
	a := &Assertion{Key: key, RPID: p.RPID, AllowedOrigins: p.AllowedOrigins, RequireUV: true, AllowCrossOrigin: p.AllowCrossOrigin}
	if p.RequireUserVerification != nil {
		a.RequireUV = *p.RequireUserVerification
	}
	if a.Challenge, err = unhexParam("payload", p.Payload, 1024); err != nil {
		return nil, err
	}
	if a.AuthenticatorData, err = unhexParam("authenticator_data", p.AuthenticatorData, maxAuthData); err != nil {
		return nil, err
	}
	if a.ClientDataJSON, err = unhexParam("client_data_json", p.ClientDataJSON, maxClientDataJSON); err != nil {
		return nil, err
	}
	if a.Signature, err = unhexParam("signature", p.Signature, maxDERSignature); err != nil {
		return nil, err
	}
	if len(a.Challenge) == 0 || len(a.Signature) == 0 {
		return nil, api.Errorf(api.CodeBadRequest, "payload and signature are required")
	}
	return a, nil
}

// Verify applies the relying-party checks of WebAuthn §7.2 that a stateless
// verifier can: type, challenge, origin, cross-origin, rpIdHash, UP and UV
// flags, and the signature over authenticatorData ‖ SHA-256(clientDataJSON).
// The sign count is returned for the caller to compare with the stored one.
// A malformed assertion is an error; one that breaks a rule is Valid false.
func (a *Assertion) Verify() (*api.VerifyWebAuthnResponse, error) {
	var auth protocol.AuthenticatorData
	if err := auth.Unmarshal(a.AuthenticatorData); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "authenticator_data is malformed")
	}
	var cd protocol.CollectedClientData
	// clientDataJSON may be extended with further members (WebAuthn
	// §5.8.1), so unknown fields are allowed here; size is bounded above.
	if err := strictjson.DecodeOpen(a.ClientDataJSON, &cd, maxClientDataJSON); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "client_data_json is not JSON")
	}
	out := &api.VerifyWebAuthnResponse{SignCount: auth.Counter, UserVerified: auth.Flags.UserVerified()}
	fail := func(format string, args ...any) (*api.VerifyWebAuthnResponse, error) {
		out.Reason = fmt.Sprintf(format, args...)
		return out, nil
	}
	if cd.Type != protocol.AssertCeremony {
		return fail("type %q is not webauthn.get", text.Truncate(string(cd.Type)))
	}
	if cd.Challenge != base64.RawURLEncoding.EncodeToString(a.Challenge) {
		return fail("challenge does not match the payload")
	}
	if len(a.AllowedOrigins) > 0 && !contains(a.AllowedOrigins, cd.Origin) {
		return fail("origin %q is not allowed", text.Truncate(cd.Origin))
	}
	if cd.CrossOrigin && !a.AllowCrossOrigin {
		return fail("cross-origin assertion")
	}
	rpHash := sha256.Sum256([]byte(a.RPID))
	if string(auth.RPIDHash) != string(rpHash[:]) {
		return fail("rpIdHash is not SHA-256 of rp_id")
	}
	if !auth.Flags.UserPresent() {
		return fail("user presence flag not set")
	}
	if a.RequireUV && !auth.Flags.UserVerified() {
		return fail("user verification required but flag not set")
	}
	cdHash := sha256.Sum256(a.ClientDataJSON)
	signed := append(append([]byte{}, a.AuthenticatorData...), cdHash[:]...)
	ok, err := a.Key.Verify(signed, a.Signature)
	if err != nil || !ok {
		return fail("signature does not verify")
	}
	out.Valid = true
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/nitro-signer/nitro-signer/envelope"
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

// VerifyK11Request is v1/verify/k11-assertion's params. Byte strings are hex.
type VerifyK11Request struct {
	CredentialID string `json:"cred_id"`
	// PublicKey is the credential's COSE_Key (ES256, P-256).
	PublicKey string `json:"public_key"`
	RPID      string `json:"rp_id"`
	// Payload is the challenge's bytes: clientDataJSON.challenge must be
	// their base64url.
	Payload           string `json:"payload"`
	AuthenticatorData string `json:"authenticator_data"`
	ClientDataJSON    string `json:"client_data_json"`
	// Signature is the ASN.1 DER ECDSA signature.
	Signature string `json:"signature"`
	// AllowedOrigins, if given, must contain clientDataJSON.origin.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// RequireUserVerification demands the UV flag; absent means true.
	RequireUserVerification *bool `json:"require_user_verification,omitempty"`
	// AllowCrossOrigin accepts assertions made in a cross-origin frame.
	AllowCrossOrigin bool `json:"allow_cross_origin,omitempty"`
}

// VerifyK11Response is v1/verify/k11-assertion's result. When Valid is
// false, Reason names the rule the assertion broke.
type VerifyK11Response struct {
	Valid        bool   `json:"valid"`
	Reason       string `json:"reason,omitempty"`
	SignCount    uint32 `json:"sign_count"`
	UserVerified bool   `json:"user_verified"`
}

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

func (s *Service) verifyK11(_ context.Context, r *Request) (any, error) {
	var p VerifyK11Request
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	a, err := p.assertion()
	if err != nil {
		return nil, err
	}
	return a.Verify()
}

func (p *VerifyK11Request) assertion() (*Assertion, error) {
	if _, err := unhexParam("cred_id", p.CredentialID, maxCredentialID); err != nil {
		return nil, err
	}
	keyBytes, err := unhexParam("public_key", p.PublicKey, maxCOSEKey)
	if err != nil {
		return nil, err
	}
	parsed, err := webauthncose.ParsePublicKey(keyBytes)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "public_key is not a COSE key")
	}
	key, ok := parsed.(webauthncose.EC2PublicKeyData)
	if !ok || key.Algorithm != int64(webauthncose.AlgES256) || key.Curve != int64(webauthncose.P256) {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "public_key must be an ES256 P-256 COSE key")
	}
	if p.RPID == "" || len(p.RPID) > 253 {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "rp_id is required")
	}
	if len(p.AllowedOrigins) > maxOrigins {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "more than %d allowed origins", maxOrigins)
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
		return nil, envelope.Errorf(envelope.CodeBadRequest, "payload and signature are required")
	}
	return a, nil
}

// Verify applies the relying-party checks of WebAuthn §7.2 that a stateless
// verifier can: type, challenge, origin, cross-origin, rpIdHash, UP and UV
// flags, and the signature over authenticatorData ‖ SHA-256(clientDataJSON).
// The sign count is returned for the caller to compare with the stored one.
// A malformed assertion is an error; one that breaks a rule is Valid false.
func (a *Assertion) Verify() (*VerifyK11Response, error) {
	var auth protocol.AuthenticatorData
	if err := auth.Unmarshal(a.AuthenticatorData); err != nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "authenticator_data is malformed")
	}
	var cd protocol.CollectedClientData
	// clientDataJSON may be extended with further members (WebAuthn
	// §5.8.1), so unknown fields are allowed here; size is bounded above.
	if err := strictjson.DecodeOpen(a.ClientDataJSON, &cd, maxClientDataJSON); err != nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "client_data_json is not JSON")
	}
	out := &VerifyK11Response{SignCount: auth.Counter, UserVerified: auth.Flags.UserVerified()}
	fail := func(format string, args ...any) (*VerifyK11Response, error) {
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

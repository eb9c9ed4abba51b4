package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// The enclave as an OpenID Connect issuer (docs/protocol.md, "OIDC"). Both
// methods are in the table only when the configuration has an oidc member.

// openIDConfiguration is the discovery document, its members in the order
// written.
type openIDConfiguration struct {
	Issuer          string   `json:"issuer"`
	JWKSURI         string   `json:"jwks_uri"`
	ResponseTypes   []string `json:"response_types_supported"`
	SubjectTypes    []string `json:"subject_types_supported"`
	SigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported []string `json:"claims_supported"`
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

// awsTagsClaim is the claim AWS STS reads session tags from.
const awsTagsClaim = "https://aws.amazon.com/tags"

type awsTags struct {
	PrincipalTags     map[string][]string `json:"principal_tags"`
	TransitiveTagKeys []string            `json:"transitive_tag_keys"`
}

// idTokenClaims are the token's claims, in the order written.
type idTokenClaims struct {
	Issuer    string  `json:"iss"`
	Subject   string  `json:"sub"`
	Audience  string  `json:"aud"`
	IssuedAt  int64   `json:"iat"`
	NotBefore int64   `json:"nbf"`
	Expires   int64   `json:"exp"`
	ID        string  `json:"jti"`
	Tags      awsTags `json:"https://aws.amazon.com/tags"`
}

// maxJWKSKeys bounds the keys the JWKS lists.
const maxJWKSKeys = 100

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

func (s *Service) oidcDiscovery(_ context.Context, _ *Request, _ *api.OIDCDiscoveryRequest) (*api.OIDCDiscoveryResponse, error) {
	keys, err := s.keys.Issuers()
	if err != nil {
		return nil, keyError(err)
	}
	conf, err := json.Marshal(openIDConfiguration{
		Issuer: s.oidc.Issuer, JWKSURI: s.oidc.JWKSURI,
		ResponseTypes: []string{"id_token"}, SubjectTypes: []string{"public"}, SigningAlgs: []string{"ES256"},
		ClaimsSupported: []string{"aud", "exp", "iat", "iss", "jti", "nbf", "sub", awsTagsClaim},
	})
	if err != nil {
		return nil, err
	}
	// IAM reads at most maxJWKSKeys keys of a JWKS: the newest epochs'
	// (the signing key is the last), older tokens having expired long
	// before a hundred rotations.
	if len(keys) > maxJWKSKeys {
		keys = keys[len(keys)-maxJWKSKeys:]
	}
	set := jwks{Keys: make([]jwk, 0, len(keys))}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{Kty: "EC", Crv: "P-256", X: b64(k.X()), Y: b64(k.Y()), Use: "sig", Alg: "ES256", Kid: k.KeyID()})
	}
	keySet, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	cur := keys[len(keys)-1]
	return &api.OIDCDiscoveryResponse{
		Issuer: s.oidc.Issuer, Configuration: conf, JWKSURI: s.oidc.JWKSURI, JWKS: keySet,
		KeyID: cur.KeyID(), Epoch: cur.Epoch(),
	}, nil
}

func (s *Service) oidcToken(_ context.Context, r *Request, p *api.OIDCTokenRequest) (*api.OIDCTokenResponse, error) {
	o, err := parseOmni(p.ActorOmni)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(s.oidc.Audiences, p.Audience) {
		return nil, api.Errorf(api.CodeAudienceNotAllowed, "audience is not one of the %d the configuration allows", len(s.oidc.Audiences))
	}
	if p.TTL < s.oidc.MinTTL || p.TTL > s.oidc.MaxTTL {
		return nil, api.Errorf(api.CodeTTLOutOfRange, "ttl %d: want %d..%d seconds", p.TTL, s.oidc.MinTTL, s.oidc.MaxTTL)
	}
	enc, err := replyEncrypter(r, "oidc-token", "the token")
	if err != nil {
		return nil, err
	}
	key, err := s.keys.Issuer(0)
	if err != nil {
		return nil, keyError(err)
	}
	token, exp, err := s.mintIDToken(key, o, p.Audience, p.TTL)
	if err != nil {
		return nil, err
	}
	defer clear(token)
	out, err := sealToReply(enc, token, "the token")
	if err != nil {
		return nil, err
	}
	return &api.OIDCTokenResponse{Token: out, KeyID: key.KeyID(), Expires: exp, Epoch: key.Epoch()}, nil
}

// mintIDToken returns a compact JWS (ES256) of the ID token for actor o,
// and its exp.
func (s *Service) mintIDToken(key *keyring.IssuerKey, o keyring.Omni, audience string, ttl int64) ([]byte, int64, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, 0, api.Errorf(api.CodeInternal, "no randomness for the token's jti")
	}
	iat := s.clock().Unix()
	sub := o.String()
	header, err := json.Marshal(jwsHeader{Alg: "ES256", Kid: key.KeyID(), Typ: "JWT"})
	if err != nil {
		return nil, 0, err
	}
	claims, err := json.Marshal(idTokenClaims{
		Issuer: s.oidc.Issuer, Subject: sub, Audience: audience,
		IssuedAt: iat, NotBefore: iat, Expires: iat + ttl, ID: hex.EncodeToString(id[:]),
		Tags: awsTags{PrincipalTags: map[string][]string{"actor_omni": {sub}}, TransitiveTagKeys: []string{"actor_omni"}},
	})
	if err != nil {
		return nil, 0, err
	}
	enc := base64.RawURLEncoding
	input := make([]byte, 0, enc.EncodedLen(len(header))+1+enc.EncodedLen(len(claims))+1+enc.EncodedLen(64))
	input = enc.AppendEncode(input, header)
	input = append(input, '.')
	input = enc.AppendEncode(input, claims)
	sig, err := key.SignES256(input)
	if err != nil {
		return nil, 0, api.Errorf(api.CodeInternal, "the token could not be signed")
	}
	input = append(input, '.')
	return enc.AppendEncode(input, sig), iat + ttl, nil
}

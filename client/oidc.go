package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// OIDCDiscovery calls v1/oidc/discovery: the discovery document and the
// JWKS the attested enclave would have published at its issuer. The
// answer is the enclave's (it is signed like every answer); whether it is
// consistent in itself is [CheckOIDCDiscovery]'s to say.
func (c *Client) OIDCDiscovery(ctx context.Context) (*api.OIDCDiscoveryResponse, error) {
	return Invoke(ctx, c, api.OIDCDiscovery, &api.OIDCDiscoveryRequest{})
}

// OIDCToken is an ID token v1/oidc-token minted, decrypted. Token is a
// bearer credential: whoever holds it can exchange it until Expires.
type OIDCToken struct {
	// Token is the ID token, a compact JWS (ES256).
	Token string
	// KeyID is the kid of the issuer key that signed it, Epoch that key's
	// epoch.
	KeyID string
	Epoch uint32
	// Expires is its exp.
	Expires time.Time
}

// OIDCToken calls v1/oidc-token for an ID token for actorOmni (its sub)
// with audience aud, valid for ttl (whole seconds, within the enclave's
// configured bounds), with a fresh reply key, and returns the token
// decrypted. The token's header and claims are checked against the
// request and the signed answer (kid, sub, aud, exp); its signature is
// the issuer's to publish ([Client.OIDCDiscovery]) and a validator's to
// check.
func (c *Client) OIDCToken(ctx context.Context, actorOmni, audience string, ttl time.Duration) (*OIDCToken, error) {
	if ttl <= 0 || ttl%time.Second != 0 {
		return nil, fmt.Errorf("client: oidc token ttl %v: want a positive whole number of seconds", ttl)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var r api.OIDCTokenResponse
	p := api.OIDCTokenRequest{ActorOmni: actorOmni, Audience: audience, TTL: int64(ttl / time.Second)}
	if err := c.call(ctx, nil, api.OIDCToken.Route, &p, &r, &jose.JSONWebKey{Key: &key.PublicKey}); err != nil {
		return nil, err
	}
	plain, err := openReply(key, r.Token, "token_jwe")
	if err != nil {
		return nil, err
	}
	token := string(plain)
	clear(plain)
	if err := checkIDToken(token, &p, &r); err != nil {
		return nil, fmt.Errorf("%w: token_jwe: %w", ErrResponse, err)
	}
	return &OIDCToken{Token: token, KeyID: r.KeyID, Epoch: r.Epoch, Expires: time.Unix(r.Expires, 0)}, nil
}

// idClaims are the claims of an ID token the client checks.
type idClaims struct {
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	Expires  int64           `json:"exp"`
}

// checkIDToken checks that token is a compact ES256 JWS whose kid is the
// answer's and whose claims are the request's (sub, aud) and the answer's
// (exp). Its errors never quote the token.
func checkIDToken(token string, p *api.OIDCTokenRequest, r *api.OIDCTokenResponse) error {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return errors.New("the plaintext is not a compact ES256 JWS")
	}
	if len(jws.Signatures) != 1 || jws.Signatures[0].Header.KeyID != r.KeyID {
		return fmt.Errorf("the token is not signed under kid %q", r.KeyID)
	}
	var claims idClaims
	if err := strictjson.DecodeOpen(jws.UnsafePayloadWithoutVerification(), &claims, envelope.MaxResponse); err != nil {
		return fmt.Errorf("the token's claims: %w", err)
	}
	var auds []string
	var one string
	if json.Unmarshal(claims.Audience, &one) == nil {
		auds = []string{one}
	} else if json.Unmarshal(claims.Audience, &auds) != nil {
		return errors.New("the token's aud is neither a string nor an array of strings")
	}
	switch {
	case !strings.EqualFold(claims.Subject, p.ActorOmni): // the enclave writes the hex lowercase
		return errors.New("the token's sub is not the actor asked for")
	case len(auds) != 1 || auds[0] != p.Audience:
		return errors.New("the token's aud is not the audience asked for")
	case claims.Expires != r.Expires:
		return fmt.Errorf("the token's exp %d is not the answer's %d", claims.Expires, r.Expires)
	}
	return nil
}

// Errors of CheckOIDCDiscovery, one per rule; each wraps ErrOIDCDiscovery.
var (
	// ErrOIDCDiscovery: a discovery answer is not consistent in itself.
	ErrOIDCDiscovery = errors.New("oidc discovery refused")
	// ErrOIDCMalformed: the configuration or the JWKS is not JSON of its
	// shape.
	ErrOIDCMalformed = fmt.Errorf("%w: malformed", ErrOIDCDiscovery)
	// ErrOIDCIssuer: the issuer is not an https URL without user, query
	// or fragment.
	ErrOIDCIssuer = fmt.Errorf("%w: bad issuer", ErrOIDCDiscovery)
	// ErrOIDCIssuerMismatch: the configuration's issuer is not the
	// answer's.
	ErrOIDCIssuerMismatch = fmt.Errorf("%w: issuer mismatch", ErrOIDCDiscovery)
	// ErrOIDCJWKSURIMismatch: the configuration's jwks_uri is not the
	// answer's.
	ErrOIDCJWKSURIMismatch = fmt.Errorf("%w: jwks_uri mismatch", ErrOIDCDiscovery)
	// ErrOIDCJWKSURIOutside: the jwks_uri is not a file under the issuer,
	// where the same upload publishes it.
	ErrOIDCJWKSURIOutside = fmt.Errorf("%w: jwks_uri not under the issuer", ErrOIDCDiscovery)
	// ErrOIDCKey: a JWKS member is not a public EC P-256 signing key.
	ErrOIDCKey = fmt.Errorf("%w: bad key", ErrOIDCDiscovery)
	// ErrOIDCKeyID: a key's kid is not its RFC 7638 thumbprint, or two
	// keys share one.
	ErrOIDCKeyID = fmt.Errorf("%w: kid is not the key's thumbprint", ErrOIDCDiscovery)
	// ErrOIDCSigningKey: the key that signs now is not in the JWKS.
	ErrOIDCSigningKey = fmt.Errorf("%w: the signing key is not published", ErrOIDCDiscovery)
)

// ConfigurationPath is where, under the issuer, the discovery document is
// served (OpenID Connect Discovery 1.0, §4).
const ConfigurationPath = ".well-known/openid-configuration"

// OIDCFile is one file to publish: its path relative to the issuer, the
// URL it is served at, and its exact bytes.
type OIDCFile struct {
	Path string
	URL  string
	Data []byte
}

// OIDCPublication is a discovery answer CheckOIDCDiscovery found
// consistent: the two files to serve under the issuer and the keys the
// JWKS lists.
type OIDCPublication struct {
	Issuer        string
	Configuration OIDCFile
	JWKS          OIDCFile
	// KeyID is the kid that signs now, Epoch its epoch; KeyIDs every kid
	// the JWKS lists, in its order.
	KeyID  string
	Epoch  uint32
	KeyIDs []string
}

// CheckOIDCDiscovery checks that a discovery answer is consistent in
// itself: the configuration's issuer and jwks_uri are the answer's, the
// jwks_uri is a file under the issuer, every JWKS key is a public EC
// P-256 key whose kid is its RFC 7638 thumbprint, and the key that signs
// now is among them. It returns the files to publish, or an error
// wrapping one of the ErrOIDC sentinels.
func CheckOIDCDiscovery(d *api.OIDCDiscoveryResponse) (*OIDCPublication, error) {
	base, err := parseIssuer(d.Issuer)
	if err != nil {
		return nil, err
	}
	var conf struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := strictjson.DecodeOpen(d.Configuration, &conf, envelope.MaxResponse); err != nil {
		return nil, fmt.Errorf("%w: openid_configuration: %w", ErrOIDCMalformed, err)
	}
	if conf.Issuer != d.Issuer {
		return nil, fmt.Errorf("%w: the configuration names issuer %q, the answer %q", ErrOIDCIssuerMismatch, conf.Issuer, d.Issuer)
	}
	if conf.JWKSURI != d.JWKSURI {
		return nil, fmt.Errorf("%w: the configuration names jwks_uri %q, the answer %q", ErrOIDCJWKSURIMismatch, conf.JWKSURI, d.JWKSURI)
	}
	jwksPath, err := underIssuer(base, d.JWKSURI)
	if err != nil {
		return nil, err
	}
	kids, err := checkJWKS(d.JWKS)
	if err != nil {
		return nil, err
	}
	found := false
	for _, k := range kids {
		found = found || k == d.KeyID
	}
	if !found {
		return nil, fmt.Errorf("%w: kid %q is not among the JWKS's %q", ErrOIDCSigningKey, d.KeyID, kids)
	}
	return &OIDCPublication{
		Issuer:        d.Issuer,
		Configuration: OIDCFile{Path: ConfigurationPath, URL: strings.TrimSuffix(d.Issuer, "/") + "/" + ConfigurationPath, Data: d.Configuration},
		JWKS:          OIDCFile{Path: jwksPath, URL: d.JWKSURI, Data: d.JWKS},
		KeyID:         d.KeyID, Epoch: d.Epoch, KeyIDs: kids,
	}, nil
}

// parseIssuer parses an issuer: https, a host, no user, query or
// fragment, no escaped path.
func parseIssuer(issuer string) (*url.URL, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrOIDCIssuer, issuer, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || strings.Contains(issuer, "#") || u.RawPath != "" {
		return nil, fmt.Errorf("%w: %q: want https://HOST[/PATH] without user, query or fragment", ErrOIDCIssuer, issuer)
	}
	return u, nil
}

// underIssuer returns the path of jwksURI relative to the issuer base, or
// an error if it is not a plain file under it (another host, a query, a
// dot segment, a directory, or the configuration's own path).
func underIssuer(base *url.URL, jwksURI string) (string, error) {
	u, err := url.Parse(jwksURI)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrOIDCJWKSURIOutside, jwksURI, err)
	}
	outside := func(why string) error {
		return fmt.Errorf("%w: %q is not under the issuer %q: %s", ErrOIDCJWKSURIOutside, jwksURI, base.String(), why)
	}
	if u.Scheme != base.Scheme || u.Host != base.Host || u.Opaque != "" || u.User != nil {
		return "", outside("another origin")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(jwksURI, "#") || u.RawPath != "" {
		return "", outside("a query, fragment or escaped path")
	}
	rel, ok := strings.CutPrefix(u.Path, strings.TrimSuffix(base.Path, "/")+"/")
	if !ok || rel == "" {
		return "", outside("another path")
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
			return "", outside("an empty, dot or unsafe path segment")
		}
	}
	if rel == ConfigurationPath {
		return "", outside("the configuration's own path")
	}
	return rel, nil
}

// jwkMembers are the members a JWKS key may have: a public EC key's.
var jwkMembers = map[string]bool{"kty": true, "crv": true, "x": true, "y": true, "kid": true, "use": true, "alg": true}

// checkJWKS checks every key of a JWKS and returns their kids in order.
func checkJWKS(raw []byte) ([]string, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := strictjson.Decode(raw, &set, envelope.MaxResponse); err != nil {
		return nil, fmt.Errorf("%w: jwks: %w", ErrOIDCMalformed, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: the jwks lists no key", ErrOIDCSigningKey)
	}
	var kids []string
	seen := map[string]bool{}
	for i, k := range set.Keys {
		kid, err := checkJWK(k)
		if err != nil {
			return nil, fmt.Errorf("jwks key %d: %w", i, err)
		}
		if seen[kid] {
			return nil, fmt.Errorf("%w: jwks key %d: kid %q twice", ErrOIDCKeyID, i, kid)
		}
		seen[kid] = true
		kids = append(kids, kid)
	}
	return kids, nil
}

// checkJWK checks one key and returns its kid.
func checkJWK(raw []byte) (string, error) {
	var members map[string]json.RawMessage
	if err := strictjson.Decode(raw, &members, envelope.MaxResponse); err != nil {
		return "", fmt.Errorf("%w: %w", ErrOIDCMalformed, err)
	}
	for name := range members {
		if !jwkMembers[name] {
			return "", fmt.Errorf("%w: member %q (a public EC key has kty, crv, x, y, kid, use, alg)", ErrOIDCKey, name)
		}
	}
	str := map[string]string{}
	for name, v := range members {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%w: member %q is not a string", ErrOIDCKey, name)
		}
		str[name] = s
	}
	switch {
	case str["kty"] != "EC":
		return "", fmt.Errorf("%w: kty %q, want EC", ErrOIDCKey, str["kty"])
	case str["crv"] != "P-256":
		return "", fmt.Errorf("%w: crv %q, want P-256", ErrOIDCKey, str["crv"])
	case members["use"] != nil && str["use"] != "sig":
		return "", fmt.Errorf("%w: use %q, want sig", ErrOIDCKey, str["use"])
	case members["alg"] != nil && str["alg"] != "ES256":
		return "", fmt.Errorf("%w: alg %q, want ES256", ErrOIDCKey, str["alg"])
	}
	x, errX := coordinate(str["x"])
	y, errY := coordinate(str["y"])
	if errX != nil || errY != nil {
		return "", fmt.Errorf("%w: x and y must be 32 bytes each, unpadded base64url", ErrOIDCKey)
	}
	if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...)); err != nil {
		return "", fmt.Errorf("%w: not a point of P-256", ErrOIDCKey)
	}
	if want := thumbprint(str["x"], str["y"]); str["kid"] != want {
		return "", fmt.Errorf("%w: kid %q, thumbprint %q", ErrOIDCKeyID, str["kid"], want)
	}
	return str["kid"], nil
}

// coordinate decodes an EC coordinate: exactly 32 bytes, in canonical
// unpadded base64url (so that the thumbprint is the key's one).
func coordinate(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, errors.New("bad coordinate")
	}
	return b, nil
}

// thumbprint is the RFC 7638 thumbprint of a P-256 public key given by
// its base64url coordinates: SHA-256 over the required members in
// lexicographic order, base64url.
func thumbprint(x, y string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, `{"crv":"P-256","kty":"EC","x":%q,"y":%q}`, x, y))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

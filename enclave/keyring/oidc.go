package keyring

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
)

// Derivation constants of the OIDC issuer key (docs/derivations.md, "OIDC
// issuer key"). They are this project's, not the calling system's.
const (
	issuerSalt  = "nitro-signer.oidc-issuer.v1"
	issuerLabel = "nitro-signer.oidc-issuer-es256"
)

// testOnlyP256Scalar turns 32 bytes into a P-256 key, failing when they
// are not a valid scalar; tests replace it to exercise the retry rule.
var testOnlyP256Scalar = p256Scalar

// IssuerKey is the OIDC issuer key of one epoch: an ES256 (P-256) key
// derived from K3[e]. Its scalar is unexported and it prints, logs and
// marshals as its epoch and kid only.
type IssuerKey struct {
	priv  *ecdsa.PrivateKey
	epoch uint32
	x, y  [32]byte
	kid   string
}

// Epoch is the epoch the key was derived under.
func (k *IssuerKey) Epoch() uint32 { return k.epoch }

// KeyID is the key's RFC 7638 JWK thumbprint: base64url without padding of
// SHA-256 over {"crv":"P-256","kty":"EC","x":…,"y":…}.
func (k *IssuerKey) KeyID() string { return k.kid }

// X and Y are the public point's coordinates, 32 bytes each, big-endian.
func (k *IssuerKey) X() []byte { return append([]byte(nil), k.x[:]...) }

// Y is the public point's y coordinate (see X).
func (k *IssuerKey) Y() []byte { return append([]byte(nil), k.y[:]...) }

// PublicKey returns a copy of the public key.
func (k *IssuerKey) PublicKey() *ecdsa.PublicKey {
	p := k.priv.PublicKey
	return &p
}

// SignES256 signs msg as JWS ES256 does (RFC 7518 §3.4): ECDSA P-256 over
// SHA-256(msg), the 64 bytes r ‖ s, each big-endian and padded to 32.
func (k *IssuerKey) SignES256(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, h[:])
	if err != nil {
		return nil, errors.New("keyring: es256 signature failed")
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

// Issuer returns the OIDC issuer key of epoch e (0: the current epoch).
// Keys are derived once per epoch and kept: an epoch's secret never
// changes while the keyring holds it.
func (k *Keyring) Issuer(e uint32) (*IssuerKey, error) {
	s, e, err := k.secret(e)
	if err != nil {
		return nil, err
	}
	k.issuersMu.Lock()
	defer k.issuersMu.Unlock()
	if key, ok := k.issuers[e]; ok {
		return key, nil
	}
	key, err := deriveIssuer(s, e)
	if err != nil {
		return nil, err
	}
	if k.issuers == nil {
		k.issuers = map[uint32]*IssuerKey{}
	}
	k.issuers[e] = key
	return key, nil
}

// Issuers returns the issuer key of every epoch held, epoch 1 first.
func (k *Keyring) Issuers() ([]*IssuerKey, error) {
	n := k.Current()
	if n == 0 {
		return nil, ErrEmpty
	}
	out := make([]*IssuerKey, 0, n)
	for e := uint32(1); e <= n; e++ {
		key, err := k.Issuer(e)
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, nil
}

// deriveIssuer: HKDF-SHA256(IKM = K3[e], salt = "nitro-signer.oidc-issuer.v1",
// info = byte(e) ‖ "nitro-signer.oidc-issuer-es256" [‖ r]), 32 bytes; if
// that is not a valid P-256 scalar (0 or ≥ n), retry with r = 1, 2, …
// appended to info, as the secp256k1 derivations do.
func deriveIssuer(s *Secret, e uint32) (*IssuerKey, error) {
	info := make([]byte, 0, 1+len(issuerLabel)+1)
	info = append(info, byte(e))
	info = append(info, issuerLabel...)
	base := len(info)
	for r := 0; r <= maxRetries; r++ {
		info = info[:base]
		if r > 0 {
			info = append(info, byte(r))
		}
		okm, err := hkdf.Key(sha256.New, s.b[:], []byte(issuerSalt), string(info), 32)
		if err != nil {
			return nil, fmt.Errorf("keyring: hkdf: %w", err)
		}
		priv, err := testOnlyP256Scalar(okm)
		clear(okm)
		if err == nil {
			return newIssuerKey(priv, e)
		}
	}
	return nil, errors.New("keyring: no valid issuer scalar after every retry")
}

// p256Scalar accepts 32 bytes that are a valid P-256 scalar: 0 < d < n.
func p256Scalar(b []byte) (*ecdsa.PrivateKey, error) {
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
	if err != nil {
		return nil, errors.New("keyring: not a valid p-256 scalar")
	}
	return priv, nil
}

func newIssuerKey(priv *ecdsa.PrivateKey, e uint32) (*IssuerKey, error) {
	pub, err := priv.PublicKey.Bytes() // 04 ‖ X ‖ Y
	if err != nil || len(pub) != 65 {
		return nil, errors.New("keyring: issuer public key")
	}
	k := &IssuerKey{priv: priv, epoch: e}
	copy(k.x[:], pub[1:33])
	copy(k.y[:], pub[33:])
	k.kid = Thumbprint(k.x[:], k.y[:])
	return k, nil
}

// Thumbprint is the RFC 7638 thumbprint of a P-256 public key.
func Thumbprint(x, y []byte) string {
	b64 := base64.RawURLEncoding.EncodeToString
	h := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`))
	return b64(h[:])
}

// Format prints the key's epoch and kid only.
func (k IssuerKey) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "keyring.IssuerKey{epoch: %d, kid: %s, redacted}", k.epoch, k.kid)
}

// LogValue logs the key's epoch and kid only.
func (k IssuerKey) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("epoch", uint64(k.epoch)), slog.String("kid", k.kid), slog.Bool("redacted", true))
}

// MarshalJSON writes the key's epoch and kid only.
func (k IssuerKey) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"epoch":%d,"kid":%q,"redacted":true}`, k.epoch, k.kid), nil
}

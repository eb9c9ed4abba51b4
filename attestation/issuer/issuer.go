// Package issuer issues attestation documents in the AWS Nitro format under a
// development PKI: an untagged COSE_Sign1 signed with ES384, the payload
// fields and CBOR types the NSM emits (the payload an indefinite-length map
// by default, as the newest real documents have it), a leaf certificate living a few hours
// under an intermediate under a development root (all P-384), and a cabundle
// ordered root first.
//
// It backs the simulated NSM and the tests. It holds no device code and no
// production binary imports it; a development root is never trusted by
// default anywhere — a verifier trusts it only when given it explicitly.
package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/attestation"
)

// Lifetimes of the development certificates.
const (
	RootLifetime         = 10 * 365 * 24 * time.Hour
	IntermediateLifetime = 30 * 24 * time.Hour
	LeafLifetime         = 3 * time.Hour
	// backdate absorbs small clock differences between issuer and verifier.
	backdate = time.Minute
)

// Authority is a development root: a self-signed P-384 CA.
type Authority struct {
	Root *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewAuthority creates a development root valid from now.
func NewAuthority(now time.Time) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating root key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"nitro-signer development"}, CommonName: "nitro-signer development root"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	root, err := sign(tmpl, nil, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &Authority{Root: root, key: key}, nil
}

// Options shape an Issuer. The zero value issues what the NSM issues; the
// other settings exist so tests can issue documents that break one rule.
type Options struct {
	// ModuleID names the enclave; empty means a generated
	// "i-<hex>-enc<hex>" identifier in the AWS style.
	ModuleID string
	// LeafCurve is the leaf key's curve; nil means P-384.
	LeafCurve elliptic.Curve
	// LeafNotBefore and LeafLifetime override the leaf's validity window
	// (default: now minus a minute, for LeafLifetime).
	LeafNotBefore time.Time
	LeafLifetime  time.Duration
	// IntermediateNotBefore and IntermediateLifetime do the same for the
	// intermediate.
	IntermediateNotBefore time.Time
	IntermediateLifetime  time.Duration
	// DefinitePayload encodes the payload as a definite-length map (head
	// 0xa9), as some real documents do (those of 2022–2024 among the shared
	// vectors). The default is the indefinite-length map (0xbf … 0xff) of
	// the newest real document (2026), so a client that refuses indefinite
	// lengths fails in development as it would in production.
	DefinitePayload bool
}

// Issuer signs attestation documents with a leaf certificate under an
// intermediate under its Authority.
type Issuer struct {
	ModuleID     string
	Leaf         *x509.Certificate
	Intermediate *x509.Certificate
	Root         *x509.Certificate
	leafKey      *ecdsa.PrivateKey
	definite     bool
}

// NewIssuer creates an intermediate and a leaf under the authority.
func (a *Authority) NewIssuer(now time.Time, opts Options) (*Issuer, error) {
	moduleID := opts.ModuleID
	if moduleID == "" {
		var b [16]byte
		if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
			return nil, err
		}
		moduleID = fmt.Sprintf("i-%x-enc%x", b[:8], b[8:])
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating intermediate key: %w", err)
	}
	interFrom := or(opts.IntermediateNotBefore, now.Add(-backdate))
	inter, err := sign(&x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"nitro-signer development"}, CommonName: "nitro-signer development intermediate"},
		NotBefore:             interFrom,
		NotAfter:              interFrom.Add(orDuration(opts.IntermediateLifetime, IntermediateLifetime)),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, a.Root, &interKey.PublicKey, a.key)
	if err != nil {
		return nil, err
	}
	curve := opts.LeafCurve
	if curve == nil {
		curve = elliptic.P384()
	}
	leafKey, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating leaf key: %w", err)
	}
	leafFrom := or(opts.LeafNotBefore, now.Add(-backdate))
	leaf, err := sign(&x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"nitro-signer development"}, CommonName: moduleID + ".sim"},
		NotBefore:             leafFrom,
		NotAfter:              leafFrom.Add(orDuration(opts.LeafLifetime, LeafLifetime)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		return nil, err
	}
	return &Issuer{ModuleID: moduleID, Leaf: leaf, Intermediate: inter, Root: a.Root, leafKey: leafKey, definite: opts.DefinitePayload}, nil
}

// CABundle is the document's cabundle: root first, as AWS orders it.
func (is *Issuer) CABundle() [][]byte { return [][]byte{is.Root.Raw, is.Intermediate.Raw} }

// Payload is what a document attests. Certificate and cabundle come from the
// Issuer.
type Payload struct {
	Timestamp time.Time
	// PCRs maps index to value; the NSM reports 0..15, 48 bytes each.
	PCRs      map[int][]byte
	PublicKey []byte
	UserData  []byte
	Nonce     []byte
}

// Issue encodes the payload as the NSM does and signs it.
func (is *Issuer) Issue(p Payload) ([]byte, error) {
	body, err := is.EncodePayload(p)
	if err != nil {
		return nil, err
	}
	return is.Sign(ProtectedES384, body)
}

// ProtectedES384 is the protected header every NSM document carries: {1: -35}.
var ProtectedES384 = []byte{0xa1, 0x01, 0x38, 0x22}

// Sign wraps body in an untagged COSE_Sign1 with the given protected header
// bytes, an empty unprotected header and an ES384 signature by the leaf. Tests
// use it directly to sign payloads that break a rule.
func (is *Issuer) Sign(protected, body []byte) ([]byte, error) {
	digest := sha512.Sum384(attestation.SigStructure(protected, body))
	r, s, err := ecdsa.Sign(rand.Reader, is.leafKey, digest[:])
	if err != nil {
		return nil, fmt.Errorf("signing document: %w", err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return cbor.Marshal([]any{protected, map[any]any{}, body, sig})
}

// CBOR heads of the payload map.
const (
	headIndefiniteMap = 0xbf
	headBreak         = 0xff
	headDefiniteMap   = 0xa0
)

// EncodePayload encodes p in the NSM's layout: a map of nine entries in the
// NSM's order, absent optional fields as null; indefinite-length
// (bf … ff) unless the issuer was made with DefinitePayload (a9 …).
func (is *Issuer) EncodePayload(p Payload) ([]byte, error) {
	pcrs, err := EncodePCRs(p.PCRs)
	if err != nil {
		return nil, err
	}
	fields := []struct {
		key   string
		value any
	}{
		{"module_id", is.ModuleID},
		{"digest", "SHA384"},
		{"timestamp", uint64(p.Timestamp.UnixMilli())},
		{"pcrs", cbor.RawMessage(pcrs)},
		{"certificate", is.Leaf.Raw},
		{"cabundle", is.CABundle()},
		{"public_key", nullable(p.PublicKey)},
		{"user_data", nullable(p.UserData)},
		{"nonce", nullable(p.Nonce)},
	}
	out := []byte{headIndefiniteMap}
	if is.definite {
		out = []byte{headDefiniteMap | byte(len(fields))}
	}
	for _, f := range fields {
		k, err := cbor.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := cbor.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		out = append(append(out, k...), v...)
	}
	if !is.definite {
		out = append(out, headBreak)
	}
	return out, nil
}

// EncodePCRs encodes a PCR map with its keys in ascending order, as the NSM
// does.
func EncodePCRs(pcrs map[int][]byte) ([]byte, error) {
	if len(pcrs) > 32 {
		return nil, errors.New("issuer: more than 32 PCRs")
	}
	keys := make([]int, 0, len(pcrs))
	for k := range pcrs {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var out []byte
	if len(keys) < 24 {
		out = []byte{0xa0 | byte(len(keys))}
	} else {
		out = []byte{0xb8, byte(len(keys))}
	}
	for _, k := range keys {
		kb, err := cbor.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := cbor.Marshal(pcrs[k])
		if err != nil {
			return nil, err
		}
		out = append(append(out, kb...), vb...)
	}
	return out, nil
}

func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

func or(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Package devpki creates a development PKI for running nitro-signer locally:
// a caller CA with broker, worker and admin client certificates carrying
// SPIFFE URI SANs, a server CA with the parent's TLS certificate for
// localhost, and an enclave configuration that trusts the caller CA. None of
// it is fit for production.
package devpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Development names.
const (
	SignerID    = "dev-signer"
	TrustDomain = "nitro-signer.dev"
	// OIDCIssuer and OIDCAudience are the development configuration's
	// OIDC issuer and its one audience.
	OIDCIssuer   = "https://oidc.signer.test"
	OIDCAudience = "sts.amazonaws.com"
)

// Roles are the client certificates created, and the methods the generated
// enclave configuration lets each call.
var Roles = map[string][]string{
	// Not v1/sign/audit-row: with dev_surface on, dev/sign-message would
	// sign any row's digest without audit-row's checks, and the enclave
	// refuses that configuration (config.ErrSurfaceOverlap).
	"broker": {
		"v1/derive-address", "v1/derive-cred-kek", "v1/sign/siwe", "v1/sign/typed-data",
		"v1/verify/k10-sig", "v1/verify/k11-assertion",
		"dev/derive-address", "dev/sign-message", "dev/sign-typed-data", "dev/derive-device", "dev/sign-device-cap-pop",
		"v1/oidc-token", "v1/oidc/discovery",
	},
	// The calling system's workers exchange tokens for AWS credentials.
	"worker": {
		"v1/derive-address", "v1/derive-cred-kek", "v1/verify/k10-sig", "v1/verify/k11-assertion",
		"v1/oidc-token", "v1/oidc/discovery",
	},
	// admin publishes the discovery document and JWKS (signerctl oidc
	// publish); it mints no tokens.
	"admin": {
		"v1/keys/status", "v1/keys/rotate", "v1/keys/import", "v1/keys/peer-request", "v1/keys/peer-import",
		"v1/oidc/discovery",
	},
	// peer is what another deployment's operator (or its automation) uses
	// to obtain this enclave's keyring for an attested replica.
	"peer": {"v1/keys/status", "v1/keys/peer-challenge", "v1/keys/peer-export"},
}

// Files written under the output directory.
const (
	CallerCAFile = "caller-ca.pem"
	ServerCAFile = "server-ca.pem"
	ServerCert   = "server.pem"
	ServerKey    = "server-key.pem"
	EnclaveJSON  = "enclave.json"
)

// ClientCert and ClientKey name a role's files.
func ClientCert(role string) string { return role + ".pem" }
func ClientKey(role string) string  { return role + "-key.pem" }

// Generate writes the PKI and enclave configuration to dir, valid from now
// for a year.
func Generate(dir string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	callerCA, callerKey, err := NewCA("nitro-signer development caller CA", now)
	if err != nil {
		return err
	}
	serverCA, serverCAKey, err := NewCA("nitro-signer development server CA", now)
	if err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, CallerCAFile), callerCA); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, ServerCAFile), serverCA); err != nil {
		return err
	}
	for role := range Roles {
		id, _ := url.Parse(fmt.Sprintf("spiffe://%s/%s", TrustDomain, role))
		cert, key, err := Issue(&x509.Certificate{
			Subject:     pkix.Name{CommonName: role},
			URIs:        []*url.URL{id},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, callerCA, callerKey, now)
		if err != nil {
			return err
		}
		if err := writePair(dir, ClientCert(role), ClientKey(role), cert, key); err != nil {
			return err
		}
	}
	cert, key, err := Issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, serverCA, serverCAKey, now)
	if err != nil {
		return err
	}
	if err := writePair(dir, ServerCert, ServerKey, cert, key); err != nil {
		return err
	}
	cfg := map[string]any{
		"signer_id":     SignerID,
		"trust_domain":  TrustDomain,
		"caller_ca_pem": string(pemCert(callerCA)),
		"roles":         Roles,
		"replay_window": "60s",
		"dev_surface":   true,
		"limits":        map[string]int{"in_flight": 256},
		"sealing":       map[string]string{"kind": "dev"},
		"oidc":          map[string]any{"issuer": OIDCIssuer, "audiences": []string{OIDCAudience}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, EnclaveJSON), append(b, '\n'), 0o644)
}

// NewCA creates a self-signed P-256 CA.
func NewCA(name string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := create(tmpl, tmpl, &key.PublicKey, key)
	return cert, key, err
}

// Issue creates a P-256 leaf under ca from tmpl's names and usages; tests
// use it for certificates of other roles and other CAs.
func Issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	cert, err := create(tmpl, ca, &key.PublicKey, caKey)
	return cert, key, err
}

func create(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeCert(path string, c *x509.Certificate) error {
	return os.WriteFile(path, pemCert(c), 0o644)
}

// PEMKey encodes a private key as PKCS#8 PEM.
func PEMKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func writePair(dir, certFile, keyFile string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	if err := writeCert(filepath.Join(dir, certFile), cert); err != nil {
		return err
	}
	k, err := PEMKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, keyFile), k, 0o600)
}

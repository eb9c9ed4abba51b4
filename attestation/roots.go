package attestation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
)

// AWSRootFingerprint is the SHA-256 fingerprint of the DER of the AWS Nitro
// Enclaves Root-G1 certificate, as AWS publishes it
// (https://docs.aws.amazon.com/enclaves/latest/user/verify-root.html).
const AWSRootFingerprint = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

// awsRootPEM is root.pem from
// https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip.
// It is accepted only if its fingerprint equals AWSRootFingerprint.
const awsRootPEM = `-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
-----END CERTIFICATE-----
`

var awsRoot = sync.OnceValues(func() (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(awsRootPEM))
	if block == nil {
		return nil, errors.New("attestation: embedded AWS root is not PEM")
	}
	return PinnedRoot(block.Bytes, AWSRootFingerprint)
})

// AWSRoot returns the AWS Nitro Enclaves Root-G1 certificate, checked against
// AWSRootFingerprint.
func AWSRoot() (*x509.Certificate, error) { return awsRoot() }

// PinnedRoot parses a DER root certificate and accepts it only if its SHA-256
// fingerprint equals fingerprintHex.
func PinnedRoot(der []byte, fingerprintHex string) (*x509.Certificate, error) {
	want, err := hex.DecodeString(fingerprintHex)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: fingerprint is not 32 bytes of hex", ErrPolicy)
	}
	got := sha256.Sum256(der)
	if !bytes.Equal(got[:], want) {
		return nil, fmt.Errorf("%w: root fingerprint %x is not the pinned %s", ErrPolicy, got, fingerprintHex)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: root: %v", ErrPolicy, err)
	}
	return cert, nil
}

// ParseRootsPEM parses every certificate in a PEM bundle, for a development
// root given explicitly (signerctl --root). It trusts what it is given: the
// caller chose the file.
func ParseRootsPEM(data []byte) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: root: %v", ErrPolicy, err)
		}
		roots = append(roots, cert)
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("%w: no certificate in root PEM", ErrPolicy)
	}
	return roots, nil
}

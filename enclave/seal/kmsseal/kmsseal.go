// Package kmsseal is the production sealer: data keys come from AWS KMS
// GenerateDataKey and are recovered with Decrypt, both with a Recipient — an
// attestation document carrying a fresh RSA-2048 key — so that KMS answers
// only with CiphertextForRecipient (CMS EnvelopedData to that key), which is
// decrypted here. The key policy (docs/operations.md) lets KMS release data
// keys only to documents with the image's PCRs.
//
// KMS is reached through the parent's egress proxy, with TLS ending inside
// the enclave, and requests are signed with the instance role's temporary
// credentials, which the parent supplies.
package kmsseal

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/seal/cms"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
)

// ContextKey is the encryption context key that binds a data key to the
// deployment (api.KMSContextKey).
const ContextKey = api.KMSContextKey

// Errors of the KMS sealer, for errors.Is.
var (
	// ErrKeyID: the key is not named by its full key ARN, or the region is
	// not the ARN's. An alias name or a bare key id would be resolved in the
	// account of the credentials the parent supplies.
	ErrKeyID = errors.New("kmsseal: the key must be named by its full key ARN")
	// ErrWrongKey: KMS answered for another key than the configured ARN;
	// nothing of the answer is used.
	ErrWrongKey = errors.New("kmsseal: KMS answered for another key than the configured one")
)

// Options build a Sealer.
type Options struct {
	// KeyID is the key's full ARN (see config.ParseKeyARN).
	KeyID string
	// Region is the ARN's region, which requests are signed for.
	Region   string
	Endpoint *url.URL
	// Roots verify the endpoint's TLS certificate.
	Roots *x509.CertPool
	// Dial reaches the parent's egress proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Credentials supplies the instance role's credentials.
	Credentials func(ctx context.Context) (*hostproto.Credentials, error)
	// Attest returns an attestation document binding publicKey (DER
	// SubjectPublicKeyInfo).
	Attest func(publicKey []byte) ([]byte, error)
}

// Sealer wraps data keys with KMS.
type Sealer struct {
	client *kms.Client
	keyID  string
	attest func([]byte) ([]byte, error)
}

var _ seal.Sealer = (*Sealer)(nil)

// New returns a KMS sealer.
func New(o Options) (*Sealer, error) {
	if o.KeyID == "" || o.Region == "" || o.Endpoint == nil || o.Roots == nil || o.Dial == nil || o.Credentials == nil || o.Attest == nil {
		return nil, errors.New("kmsseal: key, region, endpoint, roots, egress, credentials and attestation are required")
	}
	arn, err := config.ParseKeyARN(o.KeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyID, err)
	}
	if o.Region != arn.Region {
		return nil, fmt.Errorf("%w: region %q, the key is in %s", ErrKeyID, o.Region, arn.Region)
	}
	transport := host.EgressTransport(o.Dial, o.Roots, o.Endpoint.Hostname(), 0)
	creds := aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		c, err := o.Credentials(ctx)
		if err != nil {
			return aws.Credentials{}, err
		}
		return aws.Credentials{
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey(), SessionToken: c.SessionToken(),
			Source: "parent-instance-role", CanExpire: !c.Expiration.IsZero(), Expires: c.Expiration,
		}, nil
	}))
	client := kms.New(kms.Options{
		Region:           o.Region,
		BaseEndpoint:     aws.String(o.Endpoint.String()),
		Credentials:      creds,
		HTTPClient:       &http.Client{Transport: transport, Timeout: 30 * time.Second},
		RetryMaxAttempts: 3,
	})
	return &Sealer{client: client, keyID: arn.String(), attest: o.Attest}, nil
}

// Format prints the key ARN only: the sealer holds the KMS client and its
// cached credentials.
func (s *Sealer) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "kmsseal.Sealer{key: %s, redacted}", s.keyID)
}

// LogValue logs the key ARN only.
func (s *Sealer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", "kms"), slog.String("key", s.keyID))
}

// MarshalJSON writes the key ARN only.
func (s *Sealer) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"kind": "kms", "key": s.keyID})
}

// Kind is "kms".
func (*Sealer) Kind() string { return "kms" }

// recipient makes a fresh RSA key and an attestation document binding it.
func (s *Sealer) recipient() (*rsa.PrivateKey, *types.RecipientInfo, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	doc, err := s.attest(spki)
	if err != nil {
		return nil, nil, fmt.Errorf("kmsseal: attestation: %w", err)
	}
	return priv, &types.RecipientInfo{AttestationDocument: doc, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}, nil
}

// open decrypts a CiphertextForRecipient into a data key.
func open(priv *rsa.PrivateKey, forRecipient, plaintext []byte) ([]byte, error) {
	if len(plaintext) != 0 {
		clear(plaintext)
		return nil, errors.New("kmsseal: KMS returned a plaintext key despite the Recipient: refusing it")
	}
	if len(forRecipient) == 0 {
		return nil, errors.New("kmsseal: KMS returned no CiphertextForRecipient")
	}
	key, err := cms.Decrypt(forRecipient, priv)
	if err != nil {
		return nil, fmt.Errorf("kmsseal: CiphertextForRecipient: %w", err)
	}
	if len(key) != seal.DataKeySize {
		clear(key)
		return nil, fmt.Errorf("kmsseal: data key of %d bytes", len(key))
	}
	return key, nil
}

// sameKey requires an answer's KeyId to be the configured key ARN, byte
// for byte; otherwise it clears any plaintext the answer carried. It does
// not quote the answered id.
func (s *Sealer) sameKey(answered *string, plaintext []byte) error {
	if answered == nil || *answered != s.keyID {
		clear(plaintext)
		return fmt.Errorf("%w (%s)", ErrWrongKey, s.keyID)
	}
	return nil
}

// NewDataKey asks KMS for a data key for signerID.
func (s *Sealer) NewDataKey(ctx context.Context, signerID string) ([]byte, []byte, error) {
	priv, r, err := s.recipient()
	if err != nil {
		return nil, nil, err
	}
	out, err := s.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(s.keyID), KeySpec: types.DataKeySpecAes256,
		EncryptionContext: map[string]string{ContextKey: signerID}, Recipient: r,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kms GenerateDataKey: %w", err)
	}
	if err := s.sameKey(out.KeyId, out.Plaintext); err != nil {
		return nil, nil, fmt.Errorf("kms GenerateDataKey: %w", err)
	}
	key, err := open(priv, out.CiphertextForRecipient, out.Plaintext)
	if err != nil {
		return nil, nil, err
	}
	if len(out.CiphertextBlob) == 0 {
		clear(key)
		return nil, nil, errors.New("kmsseal: KMS returned no CiphertextBlob")
	}
	return key, out.CiphertextBlob, nil
}

// Unwrap asks KMS to decrypt a wrapped data key for this enclave.
func (s *Sealer) Unwrap(ctx context.Context, signerID string, wrapped []byte) ([]byte, error) {
	priv, r, err := s.recipient()
	if err != nil {
		return nil, err
	}
	out, err := s.client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: wrapped, KeyId: aws.String(s.keyID),
		EncryptionContext: map[string]string{ContextKey: signerID}, Recipient: r,
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "InvalidCiphertextException" || ae.ErrorCode() == "IncorrectKeyException") {
			// KMS judged the blob itself: this sealed keyring is bad, not KMS.
			return nil, fmt.Errorf("kms Decrypt: %w: %w", seal.ErrWrappedKey, err)
		}
		return nil, fmt.Errorf("kms Decrypt: %w", err)
	}
	// A Decrypt answer for another key is KMS's (or the path's) fault, not
	// the sealed file's: it does not wrap seal.ErrWrappedKey, so the
	// enclave waits rather than falling back past the file.
	if err := s.sameKey(out.KeyId, out.Plaintext); err != nil {
		return nil, fmt.Errorf("kms Decrypt: %w", err)
	}
	return open(priv, out.CiphertextForRecipient, out.Plaintext)
}

package kmstest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/nitro-signer/nitro-signer/api"
)

// Owner is a seal.Sealer: the owner of an account's keys using them with the account's
// own credentials, outside any enclave and with no attestation: for an
// attested key KMS refuses it; for a key in an account the parent
// controls it is how the parent reads what was sealed under that key.
type Owner struct {
	client *kms.Client
}

// Owner returns the owner of account a's keys, calling this server.
func (s *Server) Owner(a Account) *Owner {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(s.CAPEM))
	return &Owner{client: kms.New(kms.Options{
		Region:       s.policy.Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey, SessionToken: a.SessionToken}, nil
		}),
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}},
		RetryMaxAttempts: 1,
	})}
}

// Kind is "kms": the owner opens what the KMS sealer sealed.
func (*Owner) Kind() string { return "kms" }

// NewDataKey is not what an owner reading sealed keyrings does.
func (*Owner) NewDataKey(context.Context, string) ([]byte, []byte, error) {
	return nil, nil, errors.New("kmstest: the owner only decrypts")
}

// Unwrap asks KMS to decrypt a wrapped data key in plaintext, without a
// Recipient, under whichever key made it.
func (o *Owner) Unwrap(ctx context.Context, signerID string, wrapped []byte) ([]byte, error) {
	out, err := o.client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: wrapped, EncryptionContext: map[string]string{api.KMSContextKey: signerID},
	})
	if err != nil {
		return nil, err
	}
	if len(out.Plaintext) == 0 {
		return nil, errors.New("kmstest: KMS answered no plaintext")
	}
	return out.Plaintext, nil
}

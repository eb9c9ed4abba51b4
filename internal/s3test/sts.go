package s3test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// STSOptions start a weed of the test's own whose S3 endpoint is also an
// STS: AssumeRoleWithWebIdentity checks a token against the OIDC providers
// of the IAM configuration (signature, kid, exp, nbf, aud, sub, issuer),
// the role's trust policy, and confines the session by the role's
// policies and the request's session policy.
type STSOptions struct {
	// IAM is the -s3.iam.config document for the server's bucket: its
	// providers, policies and roles. An "sts" member is added (a random
	// signing key) unless it has one.
	IAM func(bucket string) map[string]any
	// CertFile and KeyFile make the endpoint TLS only (a certificate for
	// 127.0.0.1 and localhost); Roots verify it.
	CertFile, KeyFile string
	Roots             *x509.CertPool
}

// StartSTS starts a weed for this test alone with o's IAM configuration,
// and gives it a fresh bucket; the weed stops when the test ends. It never
// uses the SIGNER_TEST_S3_* server: an STS needs the test's OIDC provider
// and roles.
func StartSTS(t testing.TB, o STSOptions) *Server {
	t.Helper()
	bucket := uniqueName(t, 63)
	doc := o.IAM(bucket)
	if _, ok := doc["sts"]; !ok {
		doc["sts"] = map[string]any{
			"issuer": "s3test-sts", "signingKey": base64.StdEncoding.EncodeToString([]byte(randomHex(16))),
			"tokenDuration": "1h", "maxSessionLength": "12h",
		}
	}
	iam, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	w, err := startWeed(weedOptions{iam: iam, certFile: o.CertFile, keyFile: o.KeyFile, roots: o.Roots})
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("weed's log, the end:\n%s", w.logTail(60))
		}
		w.stop()
	})
	s := &Server{
		Endpoint: w.endpoint, AccessKey: w.access, SecretKey: w.secret, Region: DefaultRegion,
		Bucket: bucket, RootCAs: o.Roots,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", s.Bucket, err)
	}
	return s
}

// stsAnswers is nil when STS answers an exchange with no token as STS
// does (400, an ErrorResponse); weed answers 405 when no STS is set up.
func (s *Server) stsAnswers(ctx context.Context) error {
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "ErrorResponse") {
		return fmt.Errorf("STS is not set up (its IAM configuration did not load?): HTTP %d", resp.StatusCode)
	}
	return nil
}

package sts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/host"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// Options build a Client.
type Options struct {
	// Endpoint is STS's https://host[:port][/path], validated by the
	// configuration. Requests are POSTed to its path ("/" if none).
	Endpoint *url.URL
	// Roots are the only roots the endpoint's certificate may chain to.
	Roots *x509.CertPool
	// Dial reaches the parent's egress proxy (host.EgressDialer); every
	// connection is a CONNECT tunnel to the endpoint's host:port.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Region is for the SDK only (the call is unsigned); "" means
	// DefaultRegion.
	Region string
	// Timeout bounds the whole exchange, retries included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

// Client exchanges web identity tokens with STS. It holds no secret; it is
// safe for concurrent use.
type Client struct {
	client   *awssts.Client
	endpoint string
	timeout  time.Duration
}

// New returns a client of the STS at o.Endpoint.
func New(o Options) (*Client, error) {
	if o.Endpoint == nil || o.Roots == nil || o.Dial == nil {
		return nil, errors.New("sts: endpoint, roots and egress are required")
	}
	if o.Endpoint.Scheme != "https" || o.Endpoint.Hostname() == "" || o.Endpoint.User != nil ||
		o.Endpoint.RawQuery != "" || o.Endpoint.Fragment != "" || o.Endpoint.Opaque != "" {
		return nil, errors.New("sts: the endpoint must be https://host[:port][/path], with no user, query or fragment")
	}
	if o.Timeout < 0 {
		return nil, errors.New("sts: negative timeout")
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	region := o.Region
	if region == "" {
		region = DefaultRegion
	}
	return newClient(o.Endpoint, region, timeout, host.EgressTransport(o.Dial, o.Roots, o.Endpoint.Hostname(), MaxConns)), nil
}

// newClient is New over any round tripper (the fuzz target's is in
// process).
func newClient(endpoint *url.URL, region string, timeout time.Duration, rt http.RoundTripper) *Client {
	httpClient := &http.Client{
		Transport: capped{next: rt},
		// A redirect would resend the token elsewhere: the 3xx is the
		// answer, which is unavailable.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
	client := awssts.New(awssts.Options{
		Region:        region,
		BaseEndpoint:  aws.String(endpoint.String()),
		Credentials:   aws.AnonymousCredentials{},
		HTTPClient:    httpClient,
		ClientLogMode: 0,
		Logger:        logging.Nop{},
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.MaxBackoff = maxBackoff
		}),
	})
	return &Client{client: client, endpoint: endpoint.String(), timeout: timeout}
}

// Format prints the endpoint only.
func (c *Client) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "sts.Client{endpoint: %s}", c.endpoint)
}

// LogValue logs the endpoint only.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("endpoint", c.endpoint))
}

// MarshalJSON writes the endpoint only.
func (c *Client) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"endpoint": c.endpoint})
}

// Exchange calls AssumeRoleWithWebIdentity with r. It returns complete
// credentials that expire in the future, or an error: ErrRequest (nothing
// sent), a *RefusedError (STS said no), or ErrUnavailable (no usable
// answer; the error's text names why).
func (c *Client) Exchange(ctx context.Context, r Request) (*Credentials, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	in := &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(r.RoleARN),
		RoleSessionName:  aws.String(r.SessionName),
		WebIdentityToken: aws.String(string(r.Token)),
	}
	if r.Policy != "" {
		in.Policy = aws.String(r.Policy)
	}
	if r.Duration != 0 {
		in.DurationSeconds = aws.Int32(r.Duration)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out, err := c.client.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return nil, classify(ctx, err)
	}
	return credentials(out, time.Now())
}

// classify turns the SDK's error into an *UnavailableError or a
// *RefusedError.
// It never wraps err itself: the SDK's text quotes STS's message.
func classify(ctx context.Context, err error) error {
	status := 0
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	switch {
	case errors.Is(err, errTooLarge):
		return unavailable("TooLarge", "answer over %d bytes (HTTP %d)", MaxAnswerSize, status)
	case errors.As(err, &ae):
		code := cleanCode(ae.ErrorCode())
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests && !unavailableCodes[ae.ErrorCode()] {
			return &RefusedError{Code: code, Status: status}
		}
		return unavailable(code, "STS answered %s (HTTP %d)", code, status)
	case status != 0:
		return unavailable("Malformed", "malformed answer (HTTP %d)", status)
	case ctx.Err() != nil:
		return unavailable("Timeout", "no answer in time: %v", ctx.Err())
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return unavailable("Certificate", "the endpoint's certificate is not accepted")
	}
	return unavailable("Egress", "no connection to STS through the egress")
}

// credentials checks that out holds complete credentials, unexpired at
// now.
func credentials(out *awssts.AssumeRoleWithWebIdentityOutput, now time.Time) (*Credentials, error) {
	c := out.Credentials
	switch {
	case c == nil:
		return nil, unavailable("Incomplete", "answer without credentials")
	case c.AccessKeyId == nil || !accessKeyID(*c.AccessKeyId):
		return nil, unavailable("Incomplete", "answer without a well-formed access key id")
	case c.SecretAccessKey == nil || *c.SecretAccessKey == "":
		return nil, unavailable("Incomplete", "answer without a secret access key")
	case c.SessionToken == nil || *c.SessionToken == "":
		return nil, unavailable("Incomplete", "answer without a session token")
	case c.Expiration == nil || c.Expiration.IsZero():
		return nil, unavailable("Incomplete", "answer without an expiration")
	case !c.Expiration.After(now):
		return nil, unavailable("Expired", "credentials expired at %s", c.Expiration.UTC().Format(time.RFC3339))
	}
	// AWS names the session (assumed-role/<role>/<session>); an STS that
	// does not (SeaweedFS's) leaves it empty. Present, it is printed and
	// logged, so it must be a plain ARN.
	var assumed string
	if out.AssumedRoleUser != nil && out.AssumedRoleUser.Arn != nil {
		assumed = *out.AssumedRoleUser.Arn
	}
	if assumed != "" && !plainARN(assumed) {
		return nil, unavailable("Incomplete", "answer with a malformed assumed role ARN")
	}
	cred := &Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    *c.SessionToken,
		Expiration:      c.Expiration.UTC(),
		AssumedRoleARN:  assumed,
	}
	if out.SubjectFromWebIdentityToken != nil {
		cred.Subject = *out.SubjectFromWebIdentityToken
	}
	return cred, nil
}

// plainARN: arn:, at most 2048 bytes of printable ASCII without space.
func plainARN(s string) bool {
	if len(s) > 2048 || !strings.HasPrefix(s, "arn:") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// accessKeyID: 16 to 128 of [A-Za-z0-9_] (AWS's \w), as it is printed in
// logs.
func accessKeyID(s string) bool {
	if len(s) < minAccessKeyID || len(s) > maxAccessKeyID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

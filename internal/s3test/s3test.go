// Package s3test gives tests a real S3 server: SeaweedFS (`weed mini`,
// built once by .ci/ensure-weed into .cache/weed/<version>/weed), started
// on 127.0.0.1 with a static identity, so every request is signed with
// SigV4 and checked; or, when SIGNER_TEST_S3_ENDPOINT,
// SIGNER_TEST_S3_ACCESS_KEY, SIGNER_TEST_S3_SECRET_KEY and
// SIGNER_TEST_S3_BUCKET are all set, that server unchanged (AWS or any
// S3-compatible one; SIGNER_TEST_S3_REGION names its region, us-east-1 by
// default).
//
// Each Start gives the test a place of its own: a fresh bucket on the
// server it started, a unique prefix in the given bucket on another.
// Without a TestMain, Start starts one weed per test and stops it when
// the test ends; with
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }
//
// the tests of the binary share one (started by the first Start), stopped
// when they are done. weed runs in its own process group, which is killed
// on stop, and dies with the test process (Pdeathsig) if that exits first.
//
// With no weed binary the test is skipped, saying how to build one; under
// CI=true it fails instead.
package s3test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// The variables that point the tests at another S3 server.
const (
	EnvEndpoint  = "SIGNER_TEST_S3_ENDPOINT"
	EnvAccessKey = "SIGNER_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "SIGNER_TEST_S3_SECRET_KEY"
	EnvBucket    = "SIGNER_TEST_S3_BUCKET"
	EnvRegion    = "SIGNER_TEST_S3_REGION"
	// EnvWeed names a weed binary to use instead of the cached build.
	EnvWeed = "SIGNER_TEST_WEED"
)

// DefaultRegion is the region of the started server (weed takes any).
const DefaultRegion = "us-east-1"

// Server is one test's place on an S3 server.
type Server struct {
	// Endpoint is the server's URL (path-style addressing).
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	// Bucket, and Prefix within it ("" for a bucket of the test's own).
	Bucket string
	Prefix string
	// External: the SIGNER_TEST_S3_* server, not one this package started.
	External bool
	// RootCAs verify the endpoint when it is https (StartSTS); nil means
	// the system's.
	RootCAs *x509.CertPool
}

// URL is the test's store location, s3://BUCKET/PREFIX.
func (s *Server) URL() string { return "s3://" + s.Bucket + "/" + s.Prefix }

// ParentFlags are the parent's flags for the test's store.
func (s *Server) ParentFlags() []string {
	return []string{"--state", s.URL(), "--s3-endpoint", s.Endpoint, "--s3-region", s.Region}
}

// Env is the environment a parent needs for the server's credentials,
// read by the AWS SDK's default chain: the access key in
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared configuration files
// pointed away from the user's and instance metadata off, so nothing but
// these variables is consulted. Append it to a minimal environment (it
// overrides any AWS_* variable before it in the list).
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Credentials are the server's static credentials, for an SDK client.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Client is an S3 client of the server, for a test that reads or writes
// the bucket behind a store's back.
func (s *Server) Client() *s3.Client {
	return s.ClientAs(s.Credentials())
}

// ClientAs is an S3 client of the server with other credentials (an STS
// session's).
func (s *Server) ClientAs(creds aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  creds,
		HTTPClient:   s.HTTPClient(),
		Logger:       logging.Nop{},
	})
}

// HTTPClient trusts RootCAs for the endpoint.
func (s *Server) HTTPClient() *http.Client {
	if s.RootCAs == nil {
		return http.DefaultClient
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12},
	}}
}

var (
	shared struct {
		enabled bool
		once    sync.Once
		weed    *weed
		err     error
	}
	serial atomic.Uint64
)

// Run runs the tests of m sharing one weed, and stops it after them; for
// TestMain: os.Exit(s3test.Run(m)).
func Run(m *testing.M) int {
	shared.enabled = true
	code := m.Run()
	if shared.weed != nil {
		shared.weed.stop()
	}
	return code
}

// Start gives the test its place on an S3 server (see the package
// comment).
func Start(t testing.TB) *Server {
	t.Helper()
	if s, ok := external(t); ok {
		return s
	}
	var w *weed
	if shared.enabled {
		shared.once.Do(func() { shared.weed, shared.err = startWeed(weedOptions{}) })
		w = shared.weed
		if shared.err != nil {
			unavailable(t, shared.err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("weed's log, the end:\n%s", w.logTail(60))
			}
		})
	} else {
		var err error
		if w, err = startWeed(weedOptions{}); err != nil {
			unavailable(t, err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("weed's log, the end:\n%s", w.logTail(60))
			}
			w.stop()
		})
	}
	s := &Server{
		Endpoint: w.endpoint, AccessKey: w.access, SecretKey: w.secret, Region: DefaultRegion,
		Bucket: uniqueName(t, 63),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", s.Bucket, err)
	}
	return s
}

// external is the SIGNER_TEST_S3_* server, if all four are set.
func external(t testing.TB) (*Server, bool) {
	vars := []string{EnvEndpoint, EnvAccessKey, EnvSecretKey, EnvBucket}
	var set []string
	for _, v := range vars {
		if os.Getenv(v) != "" {
			set = append(set, v)
		}
	}
	if len(set) == 0 {
		return nil, false
	}
	if len(set) != len(vars) {
		t.Fatalf("s3test: %s are set but not all of %s", strings.Join(set, ", "), strings.Join(vars, ", "))
	}
	region := os.Getenv(EnvRegion)
	if region == "" {
		region = DefaultRegion
	}
	return &Server{
		Endpoint: os.Getenv(EnvEndpoint), AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey),
		Region: region, Bucket: os.Getenv(EnvBucket),
		Prefix:   "signer-test/" + uniqueName(t, 100),
		External: true,
	}, true
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueName is a bucket-safe name for the test: its name, a counter and
// random hex.
func uniqueName(t testing.TB, max int) string {
	var r [4]byte
	rand.Read(r[:])
	tail := fmt.Sprintf("-%d-%s", serial.Add(1), hex.EncodeToString(r[:]))
	name := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if name == "" {
		name = "t"
	}
	if len(name)+len(tail) > max {
		name = strings.TrimRight(name[:max-len(tail)], "-")
	}
	return name + tail
}

// unavailable skips the test (fails it under CI=true) for want of weed.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if _, missing := err.(*missingBinary); missing && os.Getenv("CI") != "true" {
		t.Skipf("s3test: %v", err)
	}
	t.Fatalf("s3test: %v", err)
}

type missingBinary struct{ path string }

func (e *missingBinary) Error() string {
	return fmt.Sprintf("no SeaweedFS binary at %s: build it with .ci/ensure-weed (make weed), "+
		"set %s, or point %s and the other SIGNER_TEST_S3_* variables at an S3 server", e.path, EnvWeed, EnvEndpoint)
}

// Binary is the weed binary the tests start: $SIGNER_TEST_WEED, else the
// pinned version's build in the repository's .cache/weed.
func Binary() (string, error) {
	if p := os.Getenv(EnvWeed); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, ".ci", "weed.version"))
		if err == nil {
			return filepath.Join(dir, ".cache", "weed", strings.TrimSpace(string(b)), "weed"), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no .ci/weed.version above the working directory")
		}
		dir = up
	}
}

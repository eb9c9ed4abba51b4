package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// S3API is the part of the S3 client the store calls (*s3.Client).
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ S3API = (*s3.Client)(nil)

// S3 is a prefix of an S3 bucket (a general purpose bucket, which lists
// keys in ascending order): one object per sequence, named as the
// directory store names its files, so that the listing's ascending order
// is ascending by sequence (see the package comment).
type S3 struct {
	api     S3API
	bucket  string
	prefix  string // "" or ending in "/"
	owner   string
	timeout time.Duration
	// pageKeys and pages bound one List: pages of at most pageKeys keys
	// (maxListPage, maxListPages; tests make them small).
	pageKeys int32
	pages    int
}

var _ Store = (*S3)(nil)

// S3Options configure an S3 store.
type S3Options struct {
	// Endpoint is an S3-compatible server's URL (http://127.0.0.1:8333);
	// buckets are then addressed by path. Empty for AWS.
	Endpoint string
	// Region; empty takes it from the SDK's chain (AWS_REGION, the shared
	// config file).
	Region string
	// ExpectedBucketOwner, when set, is sent with every request: S3
	// refuses it (403) if another account owns the bucket.
	ExpectedBucketOwner string
	// Timeout bounds each request (DefaultS3Timeout when zero).
	Timeout time.Duration
	// Credentials; nil takes the SDK's default chain (environment, shared
	// files, web identity, container and instance roles).
	Credentials aws.CredentialsProvider
	// HTTPClient; nil takes the SDK's (with AWS_CA_BUNDLE's roots, if set).
	HTTPClient aws.HTTPClient
}

// bucketName is what S3 accepts as a bucket name (general purpose
// buckets; S3-compatible servers accept at least these).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// prefixChars are the characters AWS calls safe in object keys.
var prefixChars = regexp.MustCompile(`^[A-Za-z0-9!_.*'()/-]*$`)

// ParseS3URL splits s3://BUCKET[/PREFIX] into the bucket and the prefix
// (without leading or trailing slashes).
func ParseS3URL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		// Not quoted: a URL with user information may hold a secret.
		return "", "", errors.New("state: the location is not s3://BUCKET/PREFIX (no user, port, query or fragment)")
	}
	if !bucketName.MatchString(u.Host) {
		return "", "", fmt.Errorf("state: %q is not a bucket name", u.Host)
	}
	prefix = strings.Trim(u.Path, "/")
	if len(prefix) > maxPrefix || !prefixChars.MatchString(prefix) {
		return "", "", fmt.Errorf("state: prefix %q is over %d bytes or not of S3's safe characters", prefix, maxPrefix)
	}
	if prefix != "" && slices.ContainsFunc(strings.Split(prefix, "/"), func(seg string) bool { return seg == "" || seg == "." || seg == ".." }) {
		return "", "", fmt.Errorf("state: prefix %q has an empty, . or .. segment", prefix)
	}
	return u.Host, prefix, nil
}

// OpenS3 opens the store at s3://BUCKET/PREFIX with a client from the
// AWS SDK's default configuration. The SDK logs nothing (its logger is
// off, so neither requests nor signatures can reach a log).
func OpenS3(ctx context.Context, location string, o S3Options) (*S3, error) {
	bucket, prefix, err := ParseS3URL(location)
	if err != nil {
		return nil, err
	}
	loads := []func(*config.LoadOptions) error{
		config.WithLogger(logging.Nop{}),
		config.WithClientLogMode(0),
	}
	if o.Region != "" {
		loads = append(loads, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		loads = append(loads, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("state: aws configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("state: no AWS region: set --s3-region or AWS_REGION")
	}
	var endpoint *string
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, errors.New("state: the S3 endpoint is not an http(s) URL (without user, query or fragment)")
		}
		endpoint = aws.String(o.Endpoint)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.Logger = logging.Nop{}
		so.ClientLogMode = 0
		if o.HTTPClient != nil {
			// As given: the configuration's CA bundle (AWS_CA_BUNDLE) is
			// the caller's to apply.
			so.HTTPClient = o.HTTPClient
		}
		if endpoint != nil {
			so.BaseEndpoint = endpoint
			so.UsePathStyle = true
		}
	})
	return NewS3(client, bucket, prefix, o)
}

// NewS3 is the store at bucket/prefix through api.
func NewS3(api S3API, bucket, prefix string, o S3Options) (*S3, error) {
	if !bucketName.MatchString(bucket) {
		return nil, fmt.Errorf("state: %q is not a bucket name", bucket)
	}
	if _, p, err := ParseS3URL("s3://" + bucket + "/" + prefix); err != nil {
		return nil, err
	} else if prefix = p; prefix != "" {
		prefix += "/"
	}
	s := &S3{api: api, bucket: bucket, prefix: prefix, owner: o.ExpectedBucketOwner, timeout: o.Timeout,
		pageKeys: maxListPage, pages: maxListPages}
	if s.timeout <= 0 {
		s.timeout = DefaultS3Timeout
	}
	return s, nil
}

// String is the store's s3:// URL.
func (s *S3) String() string { return "s3://" + s.bucket + "/" + s.prefix }

// Key is the object key of a sequence: PREFIX/keyring-<seq>.sealed, the
// sequence in 20 decimal digits (Name), so that S3's ascending listing is
// ascending by sequence.
func (s *S3) Key(seq uint64) string { return s.prefix + Name(seq) }

func (s *S3) ownerPtr() *string {
	if s.owner == "" {
		return nil
	}
	return aws.String(s.owner)
}

// List returns the stored sequences above after, ascending, at most max:
// S3's ascending listing of PREFIX/keyring- from the key of after on,
// paged with continuation tokens up to maxListPages pages of maxListPage
// keys, keys that are
// not exactly a sequence's ignored. more is true when max was reached
// with keys possibly remaining, or when the page bound was hit; hitting it
// with no sequence found is an error (foreign keys fill the listing). A
// listing whose keys come out of order (a directory bucket, which does
// not sort) is refused: the order is what the answer rests on.
func (s *S3) List(ctx context.Context, after uint64, max int) ([]uint64, bool, error) {
	if max < 1 {
		return nil, false, fmt.Errorf("state: list of at most %d sequences", max)
	}
	start := s.Key(after) // after 0: no sequence is 0, and every one sorts after it
	var out []uint64
	var token *string
	last, prev := start, after
	for page := 0; ; page++ {
		if page == s.pages {
			if len(out) == 0 {
				return nil, false, fmt.Errorf("state: list %s: %d pages of keys above sequence %d and not one sequence (foreign keys fill the listing)", s, s.pages, after)
			}
			return out, true, nil
		}
		resp, err := s.listPage(ctx, start, token)
		if err != nil {
			return nil, false, fmt.Errorf("state: list %s: %w", s, err)
		}
		for _, o := range resp.Contents {
			key := aws.ToString(o.Key)
			if key <= last {
				return nil, false, fmt.Errorf("state: list %s: keys out of order (is this a directory bucket?)", s)
			}
			last = key
			if len(out) == max {
				return out, true, nil
			}
			name, ok := strings.CutPrefix(key, s.prefix)
			if !ok {
				continue
			}
			seq := nameSeq(name)
			if seq == 0 {
				continue
			}
			if seq <= prev {
				// Unreachable while keys ascend past the key of after.
				return nil, false, fmt.Errorf("state: list %s: sequence %d after %d", s, seq, prev)
			}
			out, prev = append(out, seq), seq
		}
		if !aws.ToBool(resp.IsTruncated) {
			return out, false, nil
		}
		if len(out) == max {
			return out, true, nil
		}
		if resp.NextContinuationToken == nil || *resp.NextContinuationToken == "" {
			return nil, false, fmt.Errorf("state: list %s: a truncated listing without a continuation token", s)
		}
		token = resp.NextContinuationToken
	}
}

func (s *S3) listPage(ctx context.Context, startAfter string, token *string) (*s3.ListObjectsV2Output, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:              aws.String(s.bucket),
		Prefix:              aws.String(s.prefix + filePrefix),
		StartAfter:          aws.String(startAfter),
		MaxKeys:             aws.Int32(s.pageKeys),
		ContinuationToken:   token,
		ExpectedBucketOwner: s.ownerPtr(),
	})
}

// Get reads one sequence, refusing an object over MaxBlob.
func (s *S3) Get(ctx context.Context, seq uint64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.api.GetObject(ctx, &s3.GetObjectInput{
		Bucket:              aws.String(s.bucket),
		Key:                 aws.String(s.Key(seq)),
		ExpectedBucketOwner: s.ownerPtr(),
	})
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) || httpStatus(err) == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("state: get sequence %d from %s: %w", seq, s, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != nil && *resp.ContentLength > MaxBlob {
		return nil, fmt.Errorf("state: sequence %d is over %d bytes", seq, MaxBlob)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBlob+1))
	if err != nil {
		return nil, fmt.Errorf("state: get sequence %d from %s: %w", seq, s, err)
	}
	if len(b) > MaxBlob {
		return nil, fmt.Errorf("state: sequence %d is over %d bytes", seq, MaxBlob)
	}
	return b, nil
}

// Put writes seq with If-None-Match: *, so S3 stores it only if no object
// has its key. S3 answers 412 when one has (the sequence is taken:
// ErrExists, unless the stored bytes are b, which an earlier attempt of
// this Put whose answer was lost wrote), and 409 when a concurrent
// conditional write of the key is in progress: that is retried, with
// backoff, a bounded number of times.
func (s *S3) Put(ctx context.Context, seq uint64, b []byte) error {
	if seq == 0 || len(b) == 0 || len(b) > MaxBlob {
		return fmt.Errorf("state: refusing sequence %d of %d bytes", seq, len(b))
	}
	for attempt := 1; ; attempt++ {
		err := s.putOnce(ctx, seq, b)
		switch {
		case err == nil:
			return nil
		case isPreconditionFailed(err):
			return existsUnlessSame(ctx, s, seq, b)
		case !isConflict(err):
			return fmt.Errorf("state: put sequence %d to %s: %w", seq, s, err)
		case attempt == putConflictAttempts:
			return fmt.Errorf("state: put sequence %d to %s: still conflicting after %d attempts: %w", seq, s, attempt, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return fmt.Errorf("state: put sequence %d to %s: %w", seq, s, err)
		}
	}
}

func (s *S3) putOnce(ctx context.Context, seq uint64, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:              aws.String(s.bucket),
		Key:                 aws.String(s.Key(seq)),
		Body:                bytes.NewReader(b),
		ContentLength:       aws.Int64(int64(len(b))),
		ContentType:         aws.String("application/octet-stream"),
		IfNoneMatch:         aws.String("*"),
		ExpectedBucketOwner: s.ownerPtr(),
	})
	return err
}

// existsUnlessSame is a Put's answer when seq is stored already: nil if
// the stored bytes are b (this writer's own, an earlier attempt of it
// having succeeded), else ErrExists.
func existsUnlessSame(ctx context.Context, s Store, seq uint64, b []byte) error {
	stored, err := s.Get(ctx, seq)
	if err == nil && string(stored) == string(b) {
		return nil
	}
	return fmt.Errorf("%w: %d", ErrExists, seq)
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isPreconditionFailed: S3's 412 to If-None-Match, the key exists.
func isPreconditionFailed(err error) bool {
	return httpStatus(err) == http.StatusPreconditionFailed || apiCode(err) == "PreconditionFailed"
}

// isConflict: S3's 409 ConditionalRequestConflict (or OperationAborted):
// a conflicting operation on the key was in progress; try again.
func isConflict(err error) bool {
	return httpStatus(err) == http.StatusConflict || apiCode(err) == "ConditionalRequestConflict"
}

// backoff is the wait before try attempt+1: full jitter over a doubling,
// capped window.
func backoff(attempt int) time.Duration {
	window := min(putBackoffBase<<(attempt-1), putBackoffMax)
	return time.Duration(rand.Int64N(int64(window))) + time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

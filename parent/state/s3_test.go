package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nitro-signer/nitro-signer/internal/s3test"
)

// faults stands between the store's S3 client and the real server: it
// answers or drops requests as a test says, and records every request.
type faults struct {
	next *http.Client
	// put, if set, may answer the n-th PUT (from 1) itself.
	put func(n int, req *http.Request) (*http.Response, error)

	mu      sync.Mutex
	puts    int
	headers []http.Header
}

func (f *faults) Do(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.headers = append(f.headers, req.Header.Clone())
	n := 0
	if req.Method == http.MethodPut {
		f.puts++
		n = f.puts
	}
	f.mu.Unlock()
	if n > 0 && f.put != nil {
		if resp, err := f.put(n, req); resp != nil || err != nil {
			return resp, err
		}
	}
	return f.next.Do(req)
}

func (f *faults) putCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts
}

// s3Error is an S3 error answer, as S3 writes it.
func s3Error(req *http.Request, status int, code string) *http.Response {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>%s</Code><Message>injected</Message><RequestId>test</RequestId></Error>`, code)
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}
}

func openFaulty(t *testing.T, srv *s3test.Server, f *faults, o S3Options) *S3 {
	t.Helper()
	f.next = &http.Client{}
	o.Endpoint, o.Region, o.Credentials, o.HTTPClient = srv.Endpoint, srv.Region, srv.Credentials(), f
	s, err := OpenS3(context.Background(), srv.URL(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawPut writes key behind the store's back.
func rawPut(t *testing.T, srv *s3test.Server, key string, b []byte) {
	t.Helper()
	if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String(key), Body: bytes.NewReader(b),
	}); err != nil {
		t.Fatal(err)
	}
}

// S3 answers 409 ConditionalRequestConflict while a conflicting write of
// the key is in progress; AWS says to retry.
func TestS3PutRetriesConflict(t *testing.T) {
	ctx := context.Background()
	t.Run("then_stored", func(t *testing.T) {
		srv := s3test.Start(t)
		f := &faults{put: func(n int, req *http.Request) (*http.Response, error) {
			if n <= 2 {
				return s3Error(req, http.StatusConflict, "ConditionalRequestConflict"), nil
			}
			return nil, nil
		}}
		s := openFaulty(t, srv, f, S3Options{})
		if err := s.Put(ctx, 5, []byte("mine")); err != nil {
			t.Fatalf("put after two conflicts: %v", err)
		}
		if got, err := s.Get(ctx, 5); err != nil || string(got) != "mine" {
			t.Fatalf("get = %q, %v", got, err)
		}
		if n := f.putCount(); n != 3 {
			t.Fatalf("%d PUTs, want 3", n)
		}
	})
	t.Run("bad_then_taken", func(t *testing.T) {
		srv := s3test.Start(t)
		var s *S3
		f := &faults{put: func(n int, req *http.Request) (*http.Response, error) {
			if n == 1 {
				// The conflicting write was another writer's, and it won.
				rawPut(t, srv, s.Key(5), []byte("theirs"))
				return s3Error(req, http.StatusConflict, "ConditionalRequestConflict"), nil
			}
			return nil, nil
		}}
		s = openFaulty(t, srv, f, S3Options{})
		if err := s.Put(ctx, 5, []byte("mine")); !errors.Is(err, ErrExists) {
			t.Fatalf("put after a conflict the other writer won: %v, want ErrExists", err)
		}
		if got, _ := s.Get(ctx, 5); string(got) != "theirs" {
			t.Fatalf("get = %q, want the winner's", got)
		}
	})
	t.Run("bad_conflict_persists", func(t *testing.T) {
		srv := s3test.Start(t)
		f := &faults{put: func(_ int, req *http.Request) (*http.Response, error) {
			return s3Error(req, http.StatusConflict, "ConditionalRequestConflict"), nil
		}}
		s := openFaulty(t, srv, f, S3Options{})
		err := s.Put(ctx, 5, []byte("mine"))
		if err == nil || errors.Is(err, ErrExists) {
			t.Fatalf("put against endless conflicts: %v, want a failure that is not ErrExists", err)
		}
		if n := f.putCount(); n != putConflictAttempts {
			t.Fatalf("%d PUTs, want %d", n, putConflictAttempts)
		}
		if _, err := s.Get(ctx, 5); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get = %v, want nothing stored", err)
		}
	})
}

// A PUT that S3 stored but whose answer was lost is retried (by the SDK)
// and then answered 412: the bytes are this writer's, so the Put
// succeeded.
func TestS3PutWhoseAnswerWasLost(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	var f *faults
	f = &faults{put: func(n int, req *http.Request) (*http.Response, error) {
		if n == 1 {
			resp, err := f.next.Do(req)
			if err != nil {
				return nil, err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the first PUT was answered %d", resp.StatusCode)
			}
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
		return nil, nil
	}}
	s := openFaulty(t, srv, f, S3Options{})
	if err := s.Put(ctx, 9, []byte("mine")); err != nil {
		t.Fatalf("put whose first answer was lost: %v", err)
	}
	if n := f.putCount(); n != 2 {
		t.Fatalf("%d PUTs, want 2 (the lost one and the retry)", n)
	}
	// The same loss before a different writer's bytes: taken.
	if err := s.Put(ctx, 9, []byte("other")); !errors.Is(err, ErrExists) {
		t.Fatalf("put of other bytes: %v, want ErrExists", err)
	}
}

// Every request carries the expected bucket owner when one is set, and
// none when not.
func TestS3SendsExpectedBucketOwner(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	for _, owner := range []string{"", "111122223333"} {
		f := &faults{}
		s := openFaulty(t, srv, f, S3Options{ExpectedBucketOwner: owner})
		s.Put(ctx, 1, []byte("x"))
		s.Get(ctx, 1)
		s.List(ctx, 0, 10)
		if len(f.headers) < 3 {
			t.Fatalf("%d requests recorded", len(f.headers))
		}
		for i, h := range f.headers {
			if got := h.Get("X-Amz-Expected-Bucket-Owner"); got != owner {
				t.Fatalf("owner %q: request %d carries %q", owner, i, got)
			}
		}
	}
}

// A server that never answers: every call ends at the timeout.
func TestS3CallsTimeOut(t *testing.T) {
	ctx := context.Background()
	hang := aws.HTTPClient(hangingClient{})
	s, err := OpenS3(ctx, "s3://bucket/p", S3Options{
		Endpoint: "http://127.0.0.1:9", Region: "us-east-1", Timeout: 50 * time.Millisecond,
		Credentials: (&s3test.Server{AccessKey: "ak", SecretKey: "sk"}).Credentials(), HTTPClient: hang,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"put":  func() error { return s.Put(ctx, 1, []byte("x")) },
		"get":  func() error { _, err := s.Get(ctx, 1); return err },
		"list": func() error { _, _, err := s.List(ctx, 0, 1); return err },
	} {
		if err := call(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s against a hanging server: %v, want a deadline", name, err)
		}
	}
}

type hangingClient struct{}

func (hangingClient) Do(req *http.Request) (*http.Response, error) {
	<-req.Context().Done()
	return nil, req.Context().Err()
}

// A refused request is an error that is not ErrExists nor ErrNotFound,
// and quotes no secret.
func TestS3BadCredentialsFailWithoutSecret(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	bad := &s3test.Server{AccessKey: srv.AccessKey, SecretKey: "wrong-" + srv.SecretKey}
	s, err := OpenS3(ctx, srv.URL(), S3Options{Endpoint: srv.Endpoint, Region: srv.Region, Credentials: bad.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	errs := []error{s.Put(ctx, 1, []byte("x"))}
	_, err = s.Get(ctx, 1)
	errs = append(errs, err)
	_, _, err = s.List(ctx, 0, 1)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil || errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) {
			t.Errorf("call %d with a wrong secret: %v", i, err)
		}
		if strings.Contains(fmt.Sprint(err), srv.SecretKey) {
			t.Errorf("call %d: the error quotes the secret", i)
		}
	}
}

// Two prefixes of one bucket are two stores.
func TestS3PrefixesAreApart(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	open := func(p string) *S3 {
		s, err := OpenS3(ctx, srv.URL()+p, S3Options{Endpoint: srv.Endpoint, Region: srv.Region, Credentials: srv.Credentials()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open("/a"), open("/ab")
	if err := a.Put(ctx, 1, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, 1, []byte("b")); err != nil {
		t.Fatalf("the same sequence under another prefix: %v", err)
	}
	if seqs, _, err := b.List(ctx, 0, 10); err != nil || len(seqs) != 1 {
		t.Fatalf("b lists %v, %v", seqs, err)
	}
}

// listing answers canned pages, and records the requests.
type listing struct {
	S3API
	pages [][]string
	calls int
	ins   []*s3.ListObjectsV2Input
	// truncatedNoToken answers the first page truncated, with no token.
	truncatedNoToken bool
}

func (l *listing) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	l.ins = append(l.ins, in)
	if l.calls == len(l.pages) {
		return nil, errors.New("listed past the last page")
	}
	page := l.pages[l.calls]
	l.calls++
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(l.calls < len(l.pages))}
	if l.calls < len(l.pages) && !l.truncatedNoToken {
		out.NextContinuationToken = aws.String(fmt.Sprint(l.calls))
	}
	for _, k := range page {
		out.Contents = append(out.Contents, types.Object{Key: aws.String("p/" + k)})
	}
	return out, nil
}

func TestS3ListRefusesDisorderAndBoundsPages(t *testing.T) {
	ctx := context.Background()
	t.Run("bad_out_of_order", func(t *testing.T) {
		// A directory bucket lists in no order: oldest first cannot rest on it.
		l := &listing{pages: [][]string{{Name(2), Name(1)}}}
		s, _ := NewS3(l, "bucket", "p", S3Options{})
		if seqs, _, err := s.List(ctx, 0, 10); err == nil {
			t.Fatalf("listed %v out of order", seqs)
		}
	})
	t.Run("bad_out_of_order_across_pages", func(t *testing.T) {
		l := &listing{pages: [][]string{{Name(6)}, {Name(5)}}}
		s, _ := NewS3(l, "bucket", "p", S3Options{})
		if seqs, _, err := s.List(ctx, 0, 10); err == nil {
			t.Fatalf("listed %v out of order", seqs)
		}
	})
	t.Run("bad_repeated_key", func(t *testing.T) {
		l := &listing{pages: [][]string{{Name(5)}, {Name(5)}}}
		s, _ := NewS3(l, "bucket", "p", S3Options{})
		if seqs, _, err := s.List(ctx, 0, 10); err == nil {
			t.Fatalf("listed %v with a key twice", seqs)
		}
	})
	t.Run("bad_at_or_below_after", func(t *testing.T) {
		// S3 lists after StartAfter: a key at or below it is a lie.
		for _, key := range []string{Name(7), Name(6), Name(1)} {
			l := &listing{pages: [][]string{{key, Name(9)}}}
			s, _ := NewS3(l, "bucket", "p", S3Options{})
			if seqs, _, err := s.List(ctx, 7, 10); err == nil {
				t.Fatalf("after 7, listed %v from %s", seqs, key)
			}
		}
	})
	t.Run("bad_truncated_without_token", func(t *testing.T) {
		l := &listing{pages: [][]string{{Name(1)}, {Name(2)}}, truncatedNoToken: true}
		s, _ := NewS3(l, "bucket", "p", S3Options{})
		if seqs, _, err := s.List(ctx, 0, 10); err == nil {
			t.Fatalf("listed %v from a truncated page with no way on", seqs)
		}
	})
	t.Run("bad_foreign_pages_are_an_error", func(t *testing.T) {
		// Foreign keys fill every page up to the bound: that is not an
		// empty store.
		var pages [][]string
		for i := range maxListPages + 5 {
			pages = append(pages, []string{fmt.Sprintf("%s.%04d", Name(0), i)})
		}
		l := &listing{pages: pages}
		s, _ := NewS3(l, "bucket", "p", S3Options{})
		seqs, more, err := s.List(ctx, 0, 10)
		if err == nil || !strings.Contains(err.Error(), "foreign keys") {
			t.Fatalf("list = %v, more %v, %v; want an error naming the foreign keys", seqs, more, err)
		}
		if l.calls != maxListPages {
			t.Fatalf("%d pages read, want %d", l.calls, maxListPages)
		}
	})
	t.Run("foreign_pages_after_sequences_say_more", func(t *testing.T) {
		pages := [][]string{{Name(3), Name(4)}}
		for i := range maxListPages + 5 {
			pages = append(pages, []string{fmt.Sprintf("%s.%04d", Name(4), i)})
		}
		l := &listing{pages: pages}
		s, _ := NewS3(l, "bucket", "p", S3Options{})
		seqs, more, err := s.List(ctx, 2, 10)
		if err != nil || !slices.Equal(seqs, []uint64{3, 4}) || !more {
			t.Fatalf("list = %v, more %v, %v; want 3, 4 and more", seqs, more, err)
		}
		if l.calls != maxListPages {
			t.Fatalf("%d pages read, want %d", l.calls, maxListPages)
		}
	})
	t.Run("requests", func(t *testing.T) {
		l := &listing{pages: [][]string{{Name(8), Name(9)}, {Name(10)}}}
		s, _ := NewS3(l, "bucket", "p", S3Options{})
		seqs, more, err := s.List(ctx, 7, 10)
		if err != nil || !slices.Equal(seqs, []uint64{8, 9, 10}) || more {
			t.Fatalf("list = %v, more %v, %v", seqs, more, err)
		}
		for i, in := range l.ins {
			if aws.ToString(in.Prefix) != "p/keyring-" || aws.ToString(in.StartAfter) != "p/"+Name(7) ||
				aws.ToInt32(in.MaxKeys) != maxListPage || (i == 0) != (in.ContinuationToken == nil) {
				t.Fatalf("request %d: prefix %q, start after %q, max keys %d, token %v", i,
					aws.ToString(in.Prefix), aws.ToString(in.StartAfter), aws.ToInt32(in.MaxKeys), in.ContinuationToken)
			}
		}
	})
	t.Run("max_mid_page", func(t *testing.T) {
		for _, c := range []struct {
			pages [][]string
			max   int
			want  []uint64
			more  bool
		}{
			{[][]string{{Name(1), Name(2), Name(3)}}, 2, []uint64{1, 2}, true},
			{[][]string{{Name(1), Name(2), Name(3)}}, 3, []uint64{1, 2, 3}, false},
			{[][]string{{Name(1), Name(2)}, {Name(3)}}, 2, []uint64{1, 2}, true},
			{[][]string{{Name(1), Name(2), "keyring-z"}}, 2, []uint64{1, 2}, true},
		} {
			l := &listing{pages: c.pages}
			s, _ := NewS3(l, "bucket", "p", S3Options{})
			seqs, more, err := s.List(ctx, 0, c.max)
			if err != nil || !slices.Equal(seqs, c.want) || more != c.more {
				t.Errorf("%v at most %d: %v, more %v, %v; want %v, more %v", c.pages, c.max, seqs, more, err, c.want, c.more)
			}
		}
	})
}

// The page bound against a real server, made small: keys that are not
// sequences filling every page are an error, and sequences before them
// come back with more.
func TestS3ListPageBoundOnServer(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	s := openFaulty(t, srv, &faults{}, S3Options{})
	s.pageKeys, s.pages = 2, 3
	for i := range 7 {
		rawPut(t, srv, fmt.Sprintf("%s%s.%02d", s.prefix, Name(4), i), []byte("foreign"))
	}
	for _, after := range []uint64{0, 3, 4} {
		if seqs, more, err := s.List(ctx, after, 10); err == nil {
			t.Fatalf("list after %d, behind 7 foreign keys (the bound is 3 pages of 2) = %v, more %v", after, seqs, more)
		} else if !strings.Contains(err.Error(), "foreign keys") {
			t.Fatalf("the error does not say why: %v", err)
		}
	}
	if err := s.Put(ctx, 9, []byte("nine")); err != nil {
		t.Fatal(err)
	}
	if seqs, more, err := s.List(ctx, 5, 10); err != nil || !slices.Equal(seqs, []uint64{9}) || more {
		t.Fatalf("list after 5 = %v, more %v, %v", seqs, more, err)
	}
	if err := s.Put(ctx, 3, []byte("three")); err != nil {
		t.Fatal(err)
	}
	if seqs, more, err := s.List(ctx, 0, 10); err != nil || !slices.Equal(seqs, []uint64{3}) || !more {
		t.Fatalf("list = %v, more %v, %v; want 3 and more", seqs, more, err)
	}
	if seqs, more, err := s.List(ctx, 3, 10); err == nil {
		t.Fatalf("list after 3 = %v, more %v; want the foreign keys' error", seqs, more)
	}
}

func TestParseS3URL(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix string }{
		{"s3://bucket", "bucket", ""},
		{"s3://bucket/", "bucket", ""},
		{"s3://my.bucket-1/a/b/", "my.bucket-1", "a/b"},
		{"s3://abc/signer/prod", "abc", "signer/prod"},
	} {
		b, p, err := ParseS3URL(c.in)
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("%q = %q, %q, %v", c.in, b, p, err)
		}
	}
	for _, c := range []struct{ name, in string }{
		{"bad_scheme", "https://bucket/p"},
		{"bad_no_scheme", "bucket/p"},
		{"bad_upper_case", "s3://Bucket/p"},
		{"bad_short", "s3://ab/p"},
		{"bad_user", "s3://u:p@bucket/p"},
		{"bad_port", "s3://bucket:1/p"},
		{"bad_query", "s3://bucket/p?x=1"},
		{"bad_fragment", "s3://bucket/p#x"},
		{"bad_empty_segment", "s3://bucket/a//b"},
		{"bad_underscore", "s3://my_bucket/p"},
		{"bad_opaque", "s3:bucket/p"},
		{"bad_long_prefix", "s3://bucket/" + strings.Repeat("a", 513)},
		{"bad_dot_segment", "s3://bucket/a/./b"},
		{"bad_dot_dot_segment", "s3://bucket/../b"},
		{"bad_unsafe_character", "s3://bucket/a%3Fb"},
		{"bad_space", "s3://bucket/a%20b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, p, err := ParseS3URL(c.in)
			if err == nil {
				t.Fatalf("%q parsed as %q, %q", c.in, b, p)
			}
			if strings.Contains(err.Error(), "u:p@") {
				t.Fatalf("the error quotes the user information: %v", err)
			}
		})
	}
}

func TestOpenS3RefusesBadEndpoints(t *testing.T) {
	for _, c := range []struct{ name, endpoint string }{
		{"bad_scheme", "ftp://127.0.0.1:1"},
		{"bad_no_host", "http://"},
		{"bad_user", "http://key:secret@127.0.0.1:1"},
		{"bad_query", "http://127.0.0.1:1/?x=1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := OpenS3(context.Background(), "s3://bucket/p", S3Options{Endpoint: c.endpoint, Region: "us-east-1",
				Credentials: (&s3test.Server{AccessKey: "ak", SecretKey: "sk"}).Credentials()})
			if err == nil {
				t.Fatalf("opened with endpoint %q", c.endpoint)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error quotes the endpoint's user information: %v", err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, seq := range []uint64{1, 2, 9, 10, 1 << 40, math.MaxUint64 - 1, math.MaxUint64} {
		if got := nameSeq(Name(seq)); got != seq {
			t.Errorf("nameSeq(Name(%d)) = %d", seq, got)
		}
		if seq > 1 && Name(seq) <= Name(seq-1) {
			t.Errorf("%d does not sort after %d", seq, seq-1)
		}
	}
	if s, _ := NewS3(&listing{}, "bucket", "a/b", S3Options{}); s.Key(3) != "a/b/keyring-00000000000000000003.sealed" {
		t.Errorf("sequence 3 is at %q", s.Key(3))
	}
}

func FuzzName(f *testing.F) {
	for _, s := range []string{Name(1), Name(math.MaxUint64), Name(0), "keyring-", "keyring-.sealed", "keyring-1.sealed"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if seq := nameSeq(name); seq != 0 && Name(seq) != name {
			t.Fatalf("%q read as %d, which is named %q", name, seq, Name(seq))
		}
	})
}

func FuzzParseS3URL(f *testing.F) {
	for _, s := range []string{"s3://bucket/a/b", "s3://b.c-d/", "s3://x", "s3://bucket/a//b", "http://h/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		b, p, err := ParseS3URL(in)
		if err != nil {
			return
		}
		if !bucketName.MatchString(b) || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			t.Fatalf("%q parsed as %q, %q", in, b, p)
		}
		if b2, p2, err := ParseS3URL("s3://" + b + "/" + p); err != nil || b2 != b || p2 != p {
			t.Fatalf("%q: its parts do not parse back: %q, %q, %v", in, b2, p2, err)
		}
	})
}

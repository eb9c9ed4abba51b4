package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

var ctx = context.Background()

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func put(c *s3.Client, bucket, key string, b []byte, ifNoneMatch bool) error {
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)}
	if ifNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := c.PutObject(ctx, in)
	return err
}

func get(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The server honours If-None-Match: * exactly: of writers racing for a
// key one wins, every other is refused with 412 (or 409, which AWS
// documents for a conflict in progress), and the winner's bytes stay.
func TestIfNoneMatchHasOneWinnerPerRace(t *testing.T) {
	srv := Start(t)
	c := srv.Client()
	const writers, keys = 8, 20
	key := func(k int) string { return fmt.Sprintf("%srace/%02d", srv.Prefix, k) }
	var mu sync.Mutex
	won := make([][]int, keys)
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := range keys {
				err := put(c, srv.Bucket, key(k), fmt.Appendf(nil, "writer %d", w), true)
				mu.Lock()
				statuses[status(err)]++
				if err == nil {
					won[k] = append(won[k], w)
				} else if s := status(err); s != http.StatusPreconditionFailed && s != http.StatusConflict {
					t.Errorf("key %d, writer %d: %v", k, w, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("answers by status (0 is success): %v", statuses)
	for k := range keys {
		if len(won[k]) != 1 {
			t.Errorf("key %d: winners %v, want exactly one", k, won[k])
			continue
		}
		if got, want := get(t, c, srv.Bucket, key(k)), fmt.Sprintf("writer %d", won[k][0]); string(got) != want {
			t.Errorf("key %d holds %q, the winner wrote %q", k, got, want)
		}
	}
}

// The control: without the condition a second write replaces the first,
// so the refusal above is the condition's doing.
func TestUnconditionalWriteReplaces(t *testing.T) {
	srv := Start(t)
	c := srv.Client()
	k := srv.Prefix + "plain"
	for _, b := range []string{"first", "second"} {
		if err := put(c, srv.Bucket, k, []byte(b), false); err != nil {
			t.Fatal(err)
		}
	}
	if got := get(t, c, srv.Bucket, k); string(got) != "second" {
		t.Fatalf("holds %q, want the second write", got)
	}
	if err := put(c, srv.Bucket, k, []byte("third"), true); status(err) != http.StatusPreconditionFailed {
		t.Fatalf("conditional write over an object: %v, want 412", err)
	}
}

// Every request is authenticated: a wrong secret and no signature at all
// are refused.
func TestServerChecksSignatures(t *testing.T) {
	srv := Start(t)
	for _, c := range []struct {
		name  string
		creds aws.CredentialsProvider
	}{
		{"bad_secret", (&Server{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey + "x"}).Credentials()},
		{"bad_access_key", (&Server{AccessKey: "nobody", SecretKey: srv.SecretKey}).Credentials()},
		{"bad_unsigned", aws.AnonymousCredentials{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := srv.ClientAs(c.creds)
			err := put(client, srv.Bucket, srv.Prefix+"forged", []byte("x"), true)
			if s := status(err); s != http.StatusForbidden {
				t.Fatalf("put with %s: %v, want 403", c.name, err)
			}
			if strings.Contains(fmt.Sprint(err), srv.SecretKey) {
				t.Fatal("the error quotes the secret key")
			}
		})
	}
	if err := put(srv.Client(), srv.Bucket, srv.Prefix+"signed", []byte("x"), true); err != nil {
		t.Fatalf("put with the right credentials: %v", err)
	}
}

// Each Start is a place of its own.
func TestStartsAreApart(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.URL() == b.URL() {
		t.Fatalf("two starts share %s", a.URL())
	}
	if err := put(a.Client(), a.Bucket, a.Prefix+"k", []byte("a"), true); err != nil {
		t.Fatal(err)
	}
	if err := put(b.Client(), b.Bucket, b.Prefix+"k", []byte("b"), true); err != nil {
		t.Fatalf("the same key in the second place: %v", err)
	}
}

func TestParentFlagsAndEnv(t *testing.T) {
	s := &Server{Endpoint: "http://127.0.0.1:1", AccessKey: "ak", SecretKey: "sk", Region: "eu-west-1", Bucket: "b-1", Prefix: "p/q"}
	if got, want := s.ParentFlags(), []string{"--state", "s3://b-1/p/q", "--s3-endpoint", "http://127.0.0.1:1", "--s3-region", "eu-west-1"}; !slices.Equal(got, want) {
		t.Fatalf("flags = %q, want %q", got, want)
	}
	env := s.Env()
	for _, want := range []string{"AWS_ACCESS_KEY_ID=ak", "AWS_SECRET_ACCESS_KEY=sk", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + os.DevNull} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %s", want)
		}
	}
}

// stop ends weed's whole process group and removes its files.
func TestStopLeavesNothing(t *testing.T) {
	w, err := startWeed(weedOptions{})
	if err != nil {
		unavailable(t, err)
	}
	pid, dir := w.pid, w.dir
	w.stop()
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("weed's process group %d after stop: %v, want none", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("weed's directory %s after stop: %v", dir, err)
	}
}

// weed's log never holds the secret key.
func TestLogHoldsNoSecret(t *testing.T) {
	srv := Start(t)
	if srv.External {
		t.Skip("not a server this package started")
	}
	put(srv.Client(), srv.Bucket, srv.Prefix+"k", []byte("x"), true)
	b, err := os.ReadFile(shared.weed.log)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(srv.SecretKey)) {
		t.Fatal("weed logged the secret key")
	}
}

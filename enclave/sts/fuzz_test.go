package sts

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// answerSeeds are the fuzz targets' seeds, and are replayed through the
// real TLS and egress path by TestAnswerSeedsThroughTLS.
func answerSeeds() [][]byte {
	good := goodAnswer().String()
	return [][]byte{
		[]byte(good),
		[]byte(good[:len(good)/2]),
		[]byte(""),
		[]byte("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"),
		[]byte(strings.Replace(good, testSecret, "", 1)),
		[]byte(strings.Replace(good, "<Expiration>", "<Expiration>1", 1)),
		[]byte(strings.Replace(good, "<Credentials>", "<Credentials><Credentials>", 1)),
		[]byte(errorXML("AccessDenied")),
		[]byte(errorXML("Throttling")),
		[]byte(errorXML("Bad Code")),
		[]byte("<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;&a;</x>"),
		[]byte("<ErrorResponse><Error><Code>A</Code><Code>B</Code></Error></ErrorResponse>"),
	}
}

// inProcess answers every request with status and the body body holds, in
// process: the fuzz targets run the SDK's decoding and this package's
// checks without the network, so coverage follows the input alone.
type inProcess struct {
	status int
	body   atomic.Pointer[[]byte]
	calls  atomic.Int32
}

func (p *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	p.calls.Add(1)
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	b := *p.body.Load()
	return &http.Response{
		StatusCode: p.status, Header: http.Header{"Content-Type": {"text/xml"}},
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: req,
	}, nil
}

func fuzzClient(status int) (*Client, *inProcess) {
	p := &inProcess{status: status}
	return newClient(&url.URL{Scheme: "https", Host: "sts.test"}, DefaultRegion, 5*time.Second, p), p
}

// FuzzExchangeAnswer: whatever STS's 200 answer holds, Exchange does not
// panic, and returns complete, unexpired credentials or ErrUnavailable.
func FuzzExchangeAnswer(f *testing.F) {
	for _, s := range answerSeeds() {
		f.Add(s)
	}
	c, p := fuzzClient(200)
	f.Fuzz(func(t *testing.T, b []byte) {
		p.body.Store(&b)
		got, err := c.Exchange(t.Context(), testRequest())
		if err != nil {
			if !errors.Is(err, ErrUnavailable) || got != nil {
				t.Fatalf("a 200 answer gave %v, %v: want ErrUnavailable alone", got, err)
			}
			return
		}
		if !accessKeyID(got.AccessKeyID) || got.SecretAccessKey == "" || got.SessionToken == "" || got.AssumedRoleARN == "" ||
			!got.Expiration.After(time.Now()) {
			t.Fatalf("incomplete credentials accepted: %+v", got)
		}
	})
}

// FuzzExchangeError: whatever STS's 403 answer holds, Exchange does not
// panic, and returns a RefusedError with a clean code, or ErrUnavailable;
// the error never quotes the token.
func FuzzExchangeError(f *testing.F) {
	for _, s := range answerSeeds() {
		f.Add(s)
	}
	c, p := fuzzClient(403)
	f.Fuzz(func(t *testing.T, b []byte) {
		p.body.Store(&b)
		got, err := c.Exchange(t.Context(), testRequest())
		if got != nil || err == nil {
			t.Fatalf("a 403 answer gave %v, %v", got, err)
		}
		var re *RefusedError
		switch {
		case errors.As(err, &re):
			if re.Status != 403 || cleanCode(re.Code) != re.Code || errors.Is(err, ErrUnavailable) {
				t.Fatalf("refusal %#v", re)
			}
		case !errors.Is(err, ErrUnavailable):
			t.Fatalf("a 403 answer gave %v", err)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Fatalf("the error quotes the token: %v", err)
		}
	})
}

// TestAnswerSeedsThroughTLS: the fuzz seeds, as STS's 200 and 403
// answers through the real TLS server and egress proxy, end as they do
// in process.
func TestAnswerSeedsThroughTLS(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 403} {
		var body atomic.Pointer[[]byte]
		fx := newFixture(t, setup{}, func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(status)
			w.Write(*body.Load())
		})
		inproc, p := fuzzClient(status)
		for i, s := range answerSeeds() {
			body.Store(&s)
			p.body.Store(&s)
			_, errTLS := fx.client.Exchange(t.Context(), testRequest())
			_, errIn := inproc.Exchange(t.Context(), testRequest())
			if (errTLS == nil) != (errIn == nil) || (errTLS != nil && errTLS.Error() != errIn.Error()) {
				t.Errorf("status %d seed %d: through TLS %v, in process %v", status, i, errTLS, errIn)
			}
		}
	}
}

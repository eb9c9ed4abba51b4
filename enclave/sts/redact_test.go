package sts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

func testCredentials() Credentials {
	return Credentials{
		AccessKeyID: testKeyID, SecretAccessKey: testSecret, SessionToken: testSessionTok,
		Expiration: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), AssumedRoleARN: testAssumedRole, Subject: testSubject,
	}
}

// TestCredentialsNeverShowSecrets logs credentials every way a caller
// might (fmt verbs, slog's handlers, JSON, as fields, in slices, in
// errors) and finds neither secret.
func TestCredentialsNeverShowSecrets(t *testing.T) {
	t.Parallel()
	c := testCredentials()
	logtest.NeverLogged(t, c, []byte(testSecret), []byte(testSessionTok))
	logtest.NeverLogged(t, &c, []byte(testSecret), []byte(testSessionTok))
}

// TestRequestNeverShowsToken: the same for the request and its token.
func TestRequestNeverShowsToken(t *testing.T) {
	t.Parallel()
	r := testRequest()
	logtest.NeverLogged(t, r, []byte(testToken), []byte("eyJzdWIiOiJUT0tFTi1NQVJLRVIifQ"))
	logtest.NeverLogged(t, &r, []byte(testToken), []byte("eyJzdWIiOiJUT0tFTi1NQVJLRVIifQ"))
}

// TestPrintedFormsNameWhatTheySay: the redacted forms still carry what an
// operator needs (and so the redaction tests above test something).
func TestPrintedFormsNameWhatTheySay(t *testing.T) {
	t.Parallel()
	c := testCredentials()
	r := testRequest()
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	l.Info("m", "c", c, "r", r)
	cj, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	rj, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"fmt_v": fmt.Sprintf("%v %v", c, r), "fmt_+v": fmt.Sprintf("%+v %+v", &c, &r),
		"fmt_#v": fmt.Sprintf("%#v %#v", c, r), "fmt_s": fmt.Sprintf("%s %s", c, r),
		"slog_json": buf.String(), "json": string(cj) + string(rj),
	}
	for name, out := range outputs {
		for _, want := range []string{testKeyID, testAssumedRole, testRoleARN, testSession, "2030-01-02T03:04:05Z"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q: %s", name, want, out)
			}
		}
		for _, secret := range []string{testSecret, testSessionTok, testToken, "TOKEN-MARKER"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows %q: %s", name, secret, out)
			}
		}
	}
}

// TestClientPrintsItsEndpointOnly.
func TestClientPrintsItsEndpointOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{}, answerWith(200, goodAnswer().String()))
	if _, err := f.client.Exchange(t.Context(), testRequest()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "client", f.client)
	j, err := json.Marshal(f.client)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", f.client, f.client, f.client, f.client), buf.String(), string(j)} {
		if !strings.Contains(out, f.sts.srv.Listener.Addr().String()) {
			t.Errorf("no endpoint in %s", out)
		}
		for _, secret := range []string{testSecret, testSessionTok, testToken} {
			if strings.Contains(out, secret) {
				t.Errorf("the client shows %q: %s", secret, out)
			}
		}
	}
}

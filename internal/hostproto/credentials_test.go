package hostproto_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

const (
	testAccessKeyID = "ASIAEXAMPLEACCESSKEY"
	testSecretKey   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testToken       = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN0123456789"
)

// Both binaries log with slog; a log line must never hold the secret
// access key or the session token, however credentials reach it.
func TestCredentialsNeverReachTheLog(t *testing.T) {
	c, err := hostproto.ParseCredentials([]byte(`{"access_key_id":"` + testAccessKeyID + `","secret_access_key":"` + testSecretKey +
		`","session_token":"` + testToken + `","expiration":"2030-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Expiration != time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) {
		t.Fatalf("expiration %v", c.Expiration)
	}
	logtest.NeverLogged(t, *c, []byte(testSecretKey), []byte(testToken))
}

// holder keeps credentials in an unexported field, which fmt prints
// without calling Format.
type holder struct {
	c  hostproto.Credentials
	id int
}

func TestCredentialsInsideOtherValues(t *testing.T) {
	c := hostproto.NewCredentials(testAccessKeyID, testSecretKey, testToken, time.Time{})
	logtest.NeverLogged(t, holder{c: *c, id: 1}, []byte(testSecretKey), []byte(testToken))
	logtest.NeverLogged(t, c, []byte(testSecretKey), []byte(testToken))
	// What json.Marshal writes is not credentials; the wire form is.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hostproto.ParseCredentials(b); !errors.Is(err, hostproto.ErrMalformedCredentials) {
		t.Fatalf("the redacted form %s parses as credentials: %v", b, err)
	}
	wire, err := hostproto.EncodeCredentials(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := hostproto.ParseCredentials(wire)
	if err != nil || back.AccessKeyID != testAccessKeyID || back.SecretAccessKey() != testSecretKey || back.SessionToken() != testToken {
		t.Fatalf("wire round trip: %v", err)
	}
	var viaJSON hostproto.Credentials
	if err := json.Unmarshal(wire, &viaJSON); err != nil || viaJSON.SecretAccessKey() != testSecretKey {
		t.Fatalf("json.Unmarshal of the wire form: %v", err)
	}
	if err := json.Unmarshal(b, &viaJSON); !errors.Is(err, hostproto.ErrMalformedCredentials) {
		t.Fatalf("json.Unmarshal of the redacted form: %v", err)
	}
	var zero hostproto.Credentials
	if zero.SecretAccessKey() != "" || zero.SessionToken() != "" {
		t.Fatal("zero credentials hold a secret")
	}
}

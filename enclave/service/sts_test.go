package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/enclave/sts"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

const (
	stsRole      = "arn:aws:iam::123456789012:role/actor-storage"
	stsOtherRole = "arn:aws:iam::123456789012:role/broker-only"
)

// testConfig is the development configuration with the worker (and, for
// stsOtherRole, the broker) allowed v1/sts-credentials, parsed.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := devpki.Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, devpki.EnclaveJSON))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	roles := m["roles"].(map[string]any)
	for _, r := range []string{"worker", "broker"} {
		roles[r] = append(roles[r].([]any), "v1/sts-credentials")
	}
	policy := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Action": "s3:*", "Resource": []string{"arn:aws:s3:::data/actors/{{actor_omni}}/*", "arn:aws:s3:::data/{{actor_omni}}"},
	}}}
	m["sts"] = map[string]any{
		"endpoint": "https://sts.eu-west-1.amazonaws.com", "ca_pem": m["caller_ca_pem"], "token_ttl": 120,
		"audience": "signer-sts-credentials",
		"roles": []any{
			map[string]any{"arn": stsRole, "callers": []string{"worker"}, "session_policy": policy, "max_ttl": 7200},
			map[string]any{"arn": stsOtherRole, "callers": []string{"broker"}, "session_policy": policy},
		},
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeExchanger records every exchange and answers with creds or err.
type fakeExchanger struct {
	calls []sts.Request
	// tokens are the token slices the service handed over, kept to see
	// that it wipes them once the exchange is done.
	tokens [][]byte
	copies []string
	creds  *sts.Credentials
	err    error
}

func (f *fakeExchanger) Exchange(_ context.Context, r sts.Request) (*sts.Credentials, error) {
	f.calls = append(f.calls, r)
	f.tokens = append(f.tokens, r.Token)
	f.copies = append(f.copies, string(r.Token))
	return f.creds, f.err
}

var stsExpiry = now.Add(time.Hour).Truncate(time.Second)

func goodCreds() *sts.Credentials {
	return &sts.Credentials{
		AccessKeyID: "ASIAEXAMPLEACCESSKEY", SecretAccessKey: "secret-access-key-" + strings.Repeat("s", 22),
		SessionToken: "session-token-" + strings.Repeat("t", 100), Expiration: stsExpiry,
		AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/actor-storage/" + omni,
	}
}

func stsMethods(t *testing.T, ex service.Exchanger) (map[string]service.Handler, *config.Config) {
	t.Helper()
	c := testConfig(t)
	s := service.New(service.Options{Keys: testKeys(t), Clock: func() time.Time { return now }, OIDC: c.OIDC, STS: c.STS, Exchanger: ex})
	return s.Methods(false), c
}

func stsCall(t *testing.T, m map[string]service.Handler, role string, p any, reply *ecdsa.PrivateKey) (*api.STSCredentialsResponse, error) {
	t.Helper()
	raw, _ := json.Marshal(p)
	r := &service.Request{Caller: envelope.Caller{Role: role}, Params: raw}
	if reply != nil {
		r.ReplyKey = &jose.JSONWebKey{Key: &reply.PublicKey}
	}
	res, err := m[api.STSCredentials.Route](context.Background(), r)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(res)
	var out api.STSCredentialsResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out, nil
}

func TestSTSCredentialsMethodNeedsTheConfiguration(t *testing.T) {
	without := newHarness(t, nil).methods
	if _, ok := without[api.STSCredentials.Route]; ok {
		t.Fatal("v1/sts-credentials is served without an sts member")
	}
	with, _ := stsMethods(t, &fakeExchanger{})
	if _, ok := with[api.STSCredentials.Route]; !ok {
		t.Fatal("v1/sts-credentials is not served with an sts member")
	}
	if !service.AllMethods()[api.STSCredentials.Route] {
		t.Fatal("a role cannot name v1/sts-credentials")
	}
}

// The exchange STS receives is the signed request's, with the measured
// configuration's policy for that actor, and a token the issuer key
// signed for it; the credentials come back only inside the JWE.
func TestSTSCredentialsExchangeIsTheSignedRequests(t *testing.T) {
	ex := &fakeExchanger{creds: goodCreds()}
	m, cfg := stsMethods(t, ex)
	reply := newReplyKey(t)
	upper := strings.ToUpper(omni)
	res, err := stsCall(t, m, "worker", api.STSCredentialsRequest{ActorOmni: upper, RoleARN: stsRole, TTL: 7200}, reply)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.calls) != 1 {
		t.Fatalf("%d exchanges", len(ex.calls))
	}
	call := ex.calls[0]
	want, _ := cfg.STS.Role(stsRole).SessionPolicyFor(omni)
	if call.RoleARN != stsRole || call.SessionName != omni || call.Duration != 7200 || call.Policy != want {
		t.Fatalf("exchange %v, policy %s", call, call.Policy)
	}
	if !strings.Contains(call.Policy, "arn:aws:s3:::data/actors/"+omni+"/*") || strings.Contains(call.Policy, "{{") {
		t.Fatalf("policy %s", call.Policy)
	}
	// The token: ES256 under the current epoch's issuer key, for the actor,
	// the STS audience and the configured lifetime.
	key, err := testKeys(t).Issuer(0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(ex.copies[0], ".")
	if len(parts) != 3 {
		t.Fatalf("token of %d parts", len(parts))
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(key.PublicKey(), digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the token is not signed by the current issuer key")
	}
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != omni || claims["aud"] != "signer-sts-credentials" || claims["iss"] != cfg.OIDC.Issuer ||
		claims["exp"].(float64)-claims["iat"].(float64) != 120 || claims["iat"].(float64) != float64(now.Unix()) {
		t.Fatalf("claims %v", claims)
	}
	if !bytes.Equal(ex.tokens[0], make([]byte, len(ex.tokens[0]))) {
		t.Error("the token's bytes were not wiped after the exchange")
	}
	// The answer: everything secret inside the JWE only.
	if res.RoleARN != stsRole || res.AssumedRoleARN != goodCreds().AssumedRoleARN || res.Expires != stsExpiry.Unix() ||
		res.KeyID != key.KeyID() || res.Epoch != 2 {
		t.Fatalf("answer %+v", res)
	}
	b, _ := json.Marshal(res)
	for _, secret := range []string{goodCreds().SecretAccessKey, goodCreds().SessionToken, goodCreds().AccessKeyID, parts[2]} {
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("the answer carries a secret in the clear: %s", b)
		}
	}
	jwe, err := jose.ParseEncryptedCompact(res.Credentials, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := jwe.Decrypt(reply)
	if err != nil {
		t.Fatal(err)
	}
	var got api.AWSCredentials
	if err := json.Unmarshal(plain, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.AccessKeyID != goodCreds().AccessKeyID || got.SecretAccessKey != goodCreds().SecretAccessKey ||
		got.SessionToken != goodCreds().SessionToken || !got.Expiration.Equal(stsExpiry) {
		t.Fatalf("plaintext %s", plain)
	}
	if _, err := jwe.Decrypt(newReplyKey(t)); err == nil {
		t.Fatal("another key opens the credentials")
	}
}

// Every refusal before the exchange reaches no STS.
func TestSTSCredentialsRefusesBeforeExchanging(t *testing.T) {
	ex := &fakeExchanger{creds: goodCreds()}
	m, _ := stsMethods(t, ex)
	reply := newReplyKey(t)
	ok := api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsRole, TTL: 900}
	for name, c := range map[string]struct {
		role  string
		p     any
		reply *ecdsa.PrivateKey
		code  api.Code
	}{
		"bad_actor_short":            {"worker", api.STSCredentialsRequest{ActorOmni: omni[:62], RoleARN: stsRole, TTL: 900}, reply, api.CodeInvalidOmni},
		"bad_actor_json":             {"worker", api.STSCredentialsRequest{ActorOmni: omni[:60] + `"}]}`, RoleARN: stsRole, TTL: 900}, reply, api.CodeInvalidOmni},
		"bad_role_unlisted":          {"worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsRole + "2", TTL: 900}, reply, api.CodeRoleNotAllowed},
		"bad_role_wildcard":          {"worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: "arn:aws:iam::123456789012:role/*", TTL: 900}, reply, api.CodeRoleNotAllowed},
		"bad_role_case":              {"worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: strings.ToUpper(stsRole), TTL: 900}, reply, api.CodeRoleNotAllowed},
		"bad_role_for_other_callers": {"worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsOtherRole, TTL: 900}, reply, api.CodeRoleNotAllowed},
		"bad_caller_role":            {"broker", ok, reply, api.CodeRoleNotAllowed},
		"bad_ttl_below_sts":          {"worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsRole, TTL: 899}, reply, api.CodeTTLOutOfRange},
		"bad_ttl_above_role":         {"worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsRole, TTL: 7201}, reply, api.CodeTTLOutOfRange},
		"bad_ttl_negative":           {"worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsRole, TTL: -1}, reply, api.CodeTTLOutOfRange},
		"bad_no_reply_key":           {"worker", ok, nil, api.CodeBadRequest},
		"bad_unknown_param":          {"worker", map[string]any{"actor_omni": omni, "role_arn": stsRole, "ttl": 900, "policy": "*"}, reply, api.CodeBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := stsCall(t, m, c.role, c.p, c.reply)
			if api.CodeOf(err) != c.code {
				t.Fatalf("%v, want %s", err, c.code)
			}
		})
	}
	if len(ex.calls) != 0 {
		t.Fatalf("%d exchanges for refused requests", len(ex.calls))
	}
	// The broker's own role works for the broker.
	if _, err := stsCall(t, m, "broker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsOtherRole, TTL: 3600}, reply); err != nil {
		t.Fatal(err)
	}
}

// The exchange's failures map to the closed codes, naming STS's code and
// nothing STS or the token said.
func TestSTSCredentialsExchangeErrors(t *testing.T) {
	for name, c := range map[string]struct {
		err      error
		creds    *sts.Credentials
		code     api.Code
		stsCode  string
		contains string
	}{
		"refused":       {err: &sts.RefusedError{Code: "InvalidIdentityToken", Status: 400}, code: api.CodeSTSRefused, stsCode: "InvalidIdentityToken"},
		"access_denied": {err: fmt.Errorf("wrapped: %w", &sts.RefusedError{Code: "AccessDenied", Status: 403}), code: api.CodeSTSRefused, stsCode: "AccessDenied"},
		"unavailable":   {err: fmt.Errorf("%w: connection refused", sts.ErrUnavailable), code: api.CodeSTSUnavailable, stsCode: "Unavailable"},
		"deadline":      {err: context.DeadlineExceeded, code: api.CodeSTSUnavailable, stsCode: "Timeout"},
		"anything_else": {err: errors.New("token eyJhbGciOi leaked?"), code: api.CodeSTSUnavailable, stsCode: "Unavailable"},
	} {
		t.Run(name, func(t *testing.T) {
			ex := &fakeExchanger{creds: c.creds, err: c.err}
			m, _ := stsMethods(t, ex)
			_, err := stsCall(t, m, "worker", api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsRole, TTL: 900}, newReplyKey(t))
			var e *api.Error
			if !errors.As(err, &e) || e.Code != c.code || api.STSErrorCode(e) != c.stsCode {
				t.Fatalf("%v, want %s with STS code %s", err, c.code, c.stsCode)
			}
			if strings.Contains(e.Message, "eyJ") || strings.Contains(e.Message, ex.copies[0][:20]) {
				t.Fatalf("the refusal quotes the token: %s", e.Message)
			}
		})
	}
}

// blockingExchanger holds every exchange until release is closed.
type blockingExchanger struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingExchanger) Exchange(ctx context.Context, _ sts.Request) (*sts.Credentials, error) {
	b.started <- struct{}{}
	<-b.release
	return goodCreds(), nil
}

// A caller flooding the method holds at most MaxExchanges calls waiting
// on STS; one more is refused at once, and a slot freed serves again.
func TestSTSCredentialsBoundsExchangesInFlight(t *testing.T) {
	b := &blockingExchanger{started: make(chan struct{}, service.MaxExchanges+1), release: make(chan struct{})}
	m, _ := stsMethods(t, b)
	p := api.STSCredentialsRequest{ActorOmni: omni, RoleARN: stsRole, TTL: 900}
	errs := make(chan error, service.MaxExchanges)
	for range service.MaxExchanges {
		go func() {
			_, err := stsCall(t, m, "worker", p, newReplyKey(t))
			errs <- err
		}()
	}
	for range service.MaxExchanges {
		<-b.started
	}
	if _, err := stsCall(t, m, "worker", p, newReplyKey(t)); api.CodeOf(err) != api.CodeOverloaded {
		t.Fatalf("exchange %d: %v, want overloaded", service.MaxExchanges+1, err)
	}
	close(b.release)
	for range service.MaxExchanges {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stsCall(t, m, "worker", p, newReplyKey(t)); err != nil {
		t.Fatalf("after the slots freed: %v", err)
	}
}

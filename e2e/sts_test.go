package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/s3test"
)

// v1/sts-credentials end to end, against a real STS: SeaweedFS's, which
// checks a web identity token against the OIDC provider it is configured
// with (signature, kid, exp, nbf, aud, sub, iss; the JWKS fetched from the
// files signerctl oidc publish wrote), evaluates the role's trust policy
// and confines the session by the role's policy and the session policy.
// The enclave reaches it through the parent's egress proxy, over a relay
// that records every byte (the parent's view of the tunnel), with TLS
// ending in the enclave; a frame MITM records the parent's channel.

const (
	stsAccount    = "111122223333"
	stsRole       = "arn:aws:iam::" + stsAccount + ":role/signer-actor-storage"
	stsUntrusting = "arn:aws:iam::" + stsAccount + ":role/signer-untrusting"
	stsUnlisted   = "arn:aws:iam::" + stsAccount + ":role/signer-unlisted"
	// stsSelf trusts the tokens v1/oidc-token mints (the development
	// audience), for callers that exchange them themselves; stsRole trusts
	// only stsAudience, the enclave's own exchanges'.
	stsSelf        = "arn:aws:iam::" + stsAccount + ":role/signer-self-exchange"
	stsAudience    = "signer-sts-credentials"
	stsOtherActor  = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"
	stsProvider    = "signer"
	stsPolicyScope = "actors/"
)

// testCA is a CA and one server certificate under it, for 127.0.0.1 and
// localhost, in files.
type testCA struct {
	pem               string
	pool              *x509.CertPool
	certFile, keyFile string
	cert              tls.Certificate
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	c := &testCA{
		pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), pool: x509.NewCertPool(),
		certFile: filepath.Join(dir, name+".pem"), keyFile: filepath.Join(dir, name+"-key.pem"),
	}
	c.pool.AddCert(ca)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(c.certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if c.cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}

// recordingRelay is the parent's side of the egress tunnel made visible:
// the egress allow-list names it, and it relays to target (which a test
// may point elsewhere, as a parent could), keeping every byte both ways.
type recordingRelay struct {
	ln     net.Listener
	target atomic.Pointer[string]
	conns  atomic.Int64
	mu     sync.Mutex
	seen   bytes.Buffer
}

func startRelay(t *testing.T, target string) *recordingRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingRelay{ln: ln}
	r.point(target)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			go r.relay(c)
		}
	}()
	return r
}

func (r *recordingRelay) point(target string) { r.target.Store(&target) }

// hostPort is the relay's address as the enclave configuration names it.
func (r *recordingRelay) hostPort() string {
	return "localhost:" + fmt.Sprint(r.ln.Addr().(*net.TCPAddr).Port)
}

func (r *recordingRelay) relay(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", *r.target.Load())
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				r.mu.Lock()
				r.seen.Write(buf[:n])
				r.mu.Unlock()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
}

func (r *recordingRelay) recorded() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.seen.Bytes())
}

// stsStack is a signer whose configuration allows the worker
// v1/sts-credentials for two roles of a real STS, and that STS.
type stsStack struct {
	t      *testing.T
	e      *env
	weed   *s3test.Server
	issuer *issuerServer
	relay  *recordingRelay
	mitm   *frameMITM
	ca     *testCA
	// key is the enclave's issuer key, derived here from the development
	// secret: the test forges with the real key, so that each refusal
	// below is the claim's, not the signature's.
	key *keyring.IssuerKey
}

func newSTSStack(t *testing.T) *stsStack {
	t.Helper()
	ca := newTestCA(t, "sts")
	is := newIssuerServer(t)
	weed := s3test.StartSTS(t, s3test.STSOptions{
		CertFile: ca.certFile, KeyFile: ca.keyFile, Roots: ca.pool,
		IAM: func(bucket string) map[string]any { return stsIAM(is, bucket) },
	})
	s := &stsStack{t: t, weed: weed, issuer: is, ca: ca}
	s.relay = startRelay(t, strings.TrimPrefix(weed.Endpoint, "https://"))

	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := devpki.Generate(pki, time.Now()); err != nil {
		t.Fatal(err)
	}
	policy := sessionPolicy(weed.Bucket)
	editConfig(t, filepath.Join(pki, devpki.EnclaveJSON), func(cfg map[string]any) {
		roles := cfg["roles"].(map[string]any)
		roles["worker"] = append(roles["worker"].([]any), "v1/sts-credentials")
		cfg["oidc"] = map[string]any{"issuer": is.issuer, "audiences": []string{devpki.OIDCAudience, oidcOtherAudience}, "min_ttl": 1}
		cfg["sts"] = map[string]any{
			"endpoint": "https://" + s.relay.hostPort(), "ca_pem": ca.pem, "timeout": "3s", "audience": stsAudience,
			"roles": []any{
				map[string]any{"arn": stsRole, "callers": []string{"worker"}, "session_policy": policy, "max_ttl": 3600},
				map[string]any{"arn": stsUntrusting, "callers": []string{"worker"}, "session_policy": policy},
			},
		}
	})
	egress := filepath.Join(dir, "egress.sock")
	s.e = &env{t: t, dir: dir, sock: filepath.Join(dir, "enclave.sock"),
		enclaveExtra: []string{"--egress", "unix://" + egress},
		parentExtra:  []string{"--egress-listen", "unix://" + egress, "--egress-allow", s.relay.hostPort()},
	}
	if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.e.startEnclave()
	s.e.startParent("unix://" + s.e.sock)
	s.mitm = s.e.behindMITM()

	// Publish where the STS reads the JWKS.
	if out, stderr, exit := s.e.signerctlRun("oidc", "publish", "--out", is.dir, "--issuer", is.issuer); exit != 0 {
		t.Fatalf("oidc publish: exit %d\n%s%s", exit, out, stderr)
	}
	secret, err := keyring.NewSecret(s.e.devSecret())
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New()
	if _, err := kr.Add(secret); err != nil {
		t.Fatal(err)
	}
	if s.key, err = kr.Issuer(1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(is.get(t, is.issuer+"/.well-known/jwks.json"), []byte(s.key.KeyID())) {
		t.Fatal("the published JWKS does not hold the key derived from the development secret")
	}
	return s
}

// stsIAM is the STS's configuration: the enclave's issuer as an OIDC
// provider (its JWKS at the published location) with two client ids; a
// role that trusts it for the enclave's exchanges' audience and whose
// policy reaches the whole bucket (so that the session policy is what
// confines a session); one whose trust policy admits no actor; and one
// for the tokens v1/oidc-token mints.
func stsIAM(is *issuerServer, bucket string) map[string]any {
	trust := func(cond map[string]any) map[string]any {
		return map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Federated": stsProvider},
			"Action": []string{"sts:AssumeRoleWithWebIdentity"}, "Condition": map[string]any{"StringEquals": cond},
		}}}
	}
	return map[string]any{
		"policy": map[string]any{"defaultEffect": "Deny", "storeType": "memory"},
		"providers": []any{map[string]any{"name": stsProvider, "type": "oidc", "config": map[string]any{
			"issuer": is.issuer, "clientIds": []string{devpki.OIDCAudience, stsAudience},
			"jwksUri": is.issuer + "/.well-known/jwks.json", "tlsCaCert": is.caFile,
		}}},
		"policies": []any{map[string]any{"name": "BucketRW", "document": map[string]any{"Version": "2012-10-17", "Statement": []any{
			map[string]any{"Effect": "Allow", "Action": []string{"s3:PutObject", "s3:GetObject", "s3:ListBucket"},
				"Resource": []string{"arn:aws:s3:::" + bucket, "arn:aws:s3:::" + bucket + "/*"}},
		}}}},
		"roles": []any{
			map[string]any{"roleName": "signer-actor-storage", "roleArn": stsRole, "attachedPolicies": []string{"BucketRW"},
				"trustPolicy": trust(map[string]any{"oidc:aud": stsAudience})},
			map[string]any{"roleName": "signer-untrusting", "roleArn": stsUntrusting, "attachedPolicies": []string{"BucketRW"},
				"trustPolicy": trust(map[string]any{"oidc:aud": stsAudience, "oidc:sub": "no-such-actor"})},
			map[string]any{"roleName": "signer-self-exchange", "roleArn": stsSelf, "attachedPolicies": []string{"BucketRW"},
				"trustPolicy": trust(map[string]any{"oidc:aud": devpki.OIDCAudience})},
		},
	}
}

// sessionPolicy is the enclave's template: the actor's prefix only.
func sessionPolicy(bucket string) map[string]any {
	return map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Action": []string{"s3:GetObject", "s3:PutObject"},
		"Resource": "arn:aws:s3:::" + bucket + "/" + stsPolicyScope + "{{actor_omni}}/*",
	}}}
}

type printedCredentials struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration"`
	RoleARN         string `json:"RoleArn"`
	KeyID           string `json:"kid"`
}

// credentials runs signerctl sts credentials as the worker.
func (s *stsStack) credentials(actor, role, ttl string) (printedCredentials, string, int) {
	s.t.Helper()
	out, stderr, exit := s.e.signerctlRun("sts", "credentials", "--actor", actor, "--role-arn", role, "--ttl", ttl, "--role", "worker")
	var c printedCredentials
	if exit == 0 {
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			s.t.Fatalf("sts credentials printed %s: %v", out, err)
		}
	}
	return c, stderr, exit
}

func (s *stsStack) s3As(c printedCredentials) *s3.Client {
	return s.weed.ClientAs(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken))
}

// exchange is a caller exchanging a token itself for role, with no
// session policy.
func (s *stsStack) exchange(token, role string) (*awssts.AssumeRoleWithWebIdentityOutput, error) {
	c := awssts.New(awssts.Options{
		Region: s3test.DefaultRegion, BaseEndpoint: aws.String(s.weed.Endpoint), Credentials: aws.AnonymousCredentials{},
		// Retried only on what the SDK deems transient (a connection
		// lost mid-answer, seen once from weed); no refusal is retried.
		HTTPClient: s.weed.HTTPClient(), Logger: logging.Nop{}, RetryMaxAttempts: 3,
	})
	return c.AssumeRoleWithWebIdentity(ctx(s.t), &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(role), RoleSessionName: aws.String("e2e-direct"), WebIdentityToken: aws.String(token),
		DurationSeconds: aws.Int32(900),
	})
}

// forge signs claims with key (the enclave's issuer key when nil) under
// the enclave's kid: the JWS by hand.
func (s *stsStack) forge(claims map[string]any, key *ecdsa.PrivateKey) string {
	s.t.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": s.key.KeyID(), "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	if key != nil {
		return resignToken(s.t, input+".x", nil, key)
	}
	sig, err := s.key.SignES256([]byte(input))
	if err != nil {
		s.t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (s *stsStack) claims(mutate func(map[string]any)) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": s.issuer.issuer, "sub": oidcActor, "aud": stsAudience,
		"iat": now, "nbf": now, "exp": now + 300, "jti": hex.EncodeToString([]byte(fmt.Sprint(now)))}
	mutate(c)
	return c
}

func putObject(c *s3.Client, bucket, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("hello " + key)})
	return err
}

func getObject(c *s3.Client, bucket, key string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSTSCredentialsAgainstARealSTS(t *testing.T) {
	s := newSTSStack(t)
	bucket := s.weed.Bucket
	mine := stsPolicyScope + oidcActor + "/note"

	// The worker's credentials: the actor's prefix and nothing else.
	creds, stderr, exit := s.credentials(oidcActor, stsRole, "15m")
	if exit != 0 {
		t.Fatalf("sts credentials: exit %d\n%s", exit, stderr)
	}
	if creds.Version != 1 || creds.RoleARN != stsRole || creds.KeyID != s.key.KeyID() {
		t.Fatalf("sts credentials printed %+v", creds)
	}
	if exp, err := time.Parse(time.RFC3339, creds.Expiration); err != nil || exp.Before(time.Now().Add(14*time.Minute)) ||
		exp.After(time.Now().Add(16*time.Minute)) {
		t.Fatalf("expiration %s for 15m credentials (%v)", creds.Expiration, err)
	}
	c := s.s3As(creds)
	if err := putObject(c, bucket, mine); err != nil {
		t.Fatalf("put under the actor's prefix: %v", err)
	}
	if got, err := getObject(c, bucket, mine); err != nil || got != "hello "+mine {
		t.Fatalf("get under the actor's prefix: %q, %v", got, err)
	}
	if err := putObject(s.weed.Client(), bucket, "shared/readme"); err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]string{
		"another actor's prefix": stsPolicyScope + stsOtherActor + "/note",
		"the bucket's root":      "note",
		"a sibling prefix":       stsPolicyScope + oidcActor + "x/note",
	} {
		if err := putObject(c, bucket, key); apiCode(err) != "AccessDenied" {
			t.Errorf("put at %s (%s): %v, want AccessDenied", name, key, err)
		}
	}
	if _, err := getObject(c, bucket, "shared/readme"); apiCode(err) != "AccessDenied" {
		t.Errorf("get outside the prefix: %v, want AccessDenied", err)
	}
	if t.Failed() {
		return
	}
	t.Logf("credentials for %s…: put and get under %s… allowed; another actor's prefix, the root and a sibling refused", oidcActor[:8], stsPolicyScope)

	// Control: the role alone reaches the whole bucket, so the refusals
	// above are the enclave's session policy, not the role's policy (a
	// token for the role's audience, signed with the issuer key here,
	// exchanged with no session policy).
	out, err := s.exchange(s.forge(s.claims(func(map[string]any) {}), nil), stsRole)
	if err != nil {
		t.Fatalf("the role without a session policy: %v", err)
	}
	direct := s.weed.ClientAs(credentials.NewStaticCredentialsProvider(*out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken))
	if err := putObject(direct, bucket, "note-without-session-policy"); err != nil {
		t.Fatalf("control: the role without a session policy cannot write the root: %v", err)
	}

	// A caller of v1/oidc-token cannot do the same: the tokens it gets are
	// for another audience, which the role does not trust (the
	// configuration refuses an sts.audience that v1/oidc-token mints).
	tok := s.e.oidcToken(devpki.OIDCAudience)
	if _, err := s.exchange(tok.Token, stsRole); err == nil {
		t.Fatal("a token from v1/oidc-token assumed the sts-credentials role, without the session policy")
	}
	if _, err := s.exchange(tok.Token, stsSelf); err != nil {
		t.Fatalf("control: the same token for the role that trusts its audience: %v", err)
	}

	// Nothing the parent relayed holds the token or a credential: the
	// channel frames and the egress tunnel's bytes.
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"` + s.key.KeyID() + `"`))
	frames, tunnel := s.mitm.recorded(), s.relay.recorded()
	if len(frames) < 1000 || len(tunnel) < 1000 {
		t.Fatalf("recorded only %d frame bytes and %d tunnel bytes", len(frames), len(tunnel))
	}
	for where, seen := range map[string][]byte{"channel": frames, "egress tunnel": tunnel} {
		for name, secret := range map[string]string{
			"the token's header": header[:40], "the secret access key": creds.SecretAccessKey,
			"the session token": creds.SessionToken[:40], "the access key id": creds.AccessKeyID,
		} {
			if bytes.Contains(seen, []byte(secret)) {
				t.Errorf("%s crossed the parent's %s", name, where)
			}
		}
	}
	if bytes.Contains(tunnel, []byte("AssumeRoleWithWebIdentity")) {
		t.Error("the egress tunnel carried the STS call in the clear")
	}
}

// The STS refuses, for the claim alone: each token below is signed with
// the enclave's own issuer key and published kid (the control is
// accepted), but one claim is wrong; the token from another key has every
// claim right.
func TestSTSRefusesWhatTheIssuerDidNotMean(t *testing.T) {
	s := newSTSStack(t)
	if _, err := s.exchange(s.forge(s.claims(func(map[string]any) {}), nil), stsRole); err != nil {
		t.Fatalf("control: a token with every claim right: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Unix()
	for name, token := range map[string]string{
		"bad_another_key":               s.forge(s.claims(func(map[string]any) {}), other),
		"bad_expired":                   s.forge(s.claims(func(c map[string]any) { c["iat"], c["nbf"], c["exp"] = now-600, now-600, now-300 }), nil),
		"bad_audience":                  s.forge(s.claims(func(c map[string]any) { c["aud"] = oidcOtherAudience }), nil),
		"bad_audience_of_v1_oidc_token": s.forge(s.claims(func(c map[string]any) { c["aud"] = devpki.OIDCAudience }), nil),
		"bad_issuer":                    s.forge(s.claims(func(c map[string]any) { c["iss"] = "https://another-issuer.example" }), nil),
		"bad_not_yet":                   s.forge(s.claims(func(c map[string]any) { c["nbf"] = now + 600 }), nil),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.exchange(token, stsRole); err == nil {
				t.Fatal("the STS accepted it")
			} else {
				t.Logf("%s refused: %s", name, apiCode(err))
			}
		})
	}
	// The enclave's own tokens, at the role that trusts v1/oidc-token's
	// audience: one for another audience, one expired.
	t.Run("bad_enclave_token_for_another_audience", func(t *testing.T) {
		if _, err := s.exchange(s.e.oidcToken(oidcOtherAudience).Token, stsSelf); err == nil {
			t.Fatal("the STS accepted a token for another audience")
		}
	})
	t.Run("bad_enclave_token_expired", func(t *testing.T) {
		out, stderr, exit := s.e.signerctlRun("oidc", "token", "--actor", oidcActor, "--audience", devpki.OIDCAudience, "--ttl", "1s")
		if exit != 0 {
			t.Fatalf("oidc token: %s", stderr)
		}
		var tok printedToken
		if err := json.Unmarshal([]byte(out), &tok); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(time.Unix(tok.Expires+1, 0)))
		if _, err := s.exchange(tok.Token, stsSelf); apiCode(err) != "ExpiredTokenException" {
			t.Fatalf("an expired token: %v, want ExpiredTokenException", err)
		}
	})
}

// The enclave's own refusals, before and after STS: each typed.
func TestSTSCredentialsRefusals(t *testing.T) {
	s := newSTSStack(t)
	before := s.relay.conns.Load()
	for name, c := range map[string]struct {
		actor, role, ttl, code string
	}{
		"bad_role_not_in_the_allow_list": {oidcActor, stsUnlisted, "15m", "role_not_allowed"},
		"bad_role_arn_case":              {oidcActor, strings.ToUpper(stsRole), "15m", "role_not_allowed"},
		"bad_ttl_below_sts":              {oidcActor, stsRole, "899s", "ttl_out_of_range"},
		"bad_ttl_above_role":             {oidcActor, stsRole, "3601s", "ttl_out_of_range"},
		"bad_actor":                      {"not-an-actor", stsRole, "15m", "invalid_omni_account"},
		"bad_actor_with_quote":           {strings.Repeat("a", 63) + `"`, stsRole, "15m", "invalid_omni_account"},
	} {
		t.Run(name, func(t *testing.T) {
			_, stderr, exit := s.credentials(c.actor, c.role, c.ttl)
			if exit != 1 || !strings.Contains(stderr, "refused by the enclave: "+c.code) {
				t.Fatalf("exit %d: %s, want %s", exit, stderr, c.code)
			}
		})
	}
	if after := s.relay.conns.Load(); after != before {
		t.Fatalf("the enclave reached STS %d times for requests it refuses itself", after-before)
	}
	// A broker's role is allowed neither the method nor the role.
	if _, stderr, exit := s.e.signerctlRun("sts", "credentials", "--actor", oidcActor, "--role-arn", stsRole, "--ttl", "15m"); exit != 1 ||
		!strings.Contains(stderr, "unauthorized") {
		t.Fatalf("the broker: exit %d: %s", exit, stderr)
	}
	// STS's refusal, with its code: a listed role whose trust policy
	// admits no actor.
	_, stderr, exit := s.credentials(oidcActor, stsUntrusting, "15m")
	if exit != 1 || !strings.Contains(stderr, "refused by the enclave: sts_refused: AccessDenied:") {
		t.Fatalf("untrusting role: exit %d: %s", exit, stderr)
	}
}

// A parent that sends the tunnel elsewhere — to a TLS server of its own,
// with a certificate for the same name under another CA — gets no token,
// and the caller a typed sts_unavailable; so does a real-looking STS that
// hangs or fails, and an STS error is relayed with its code only.
func TestSTSExchangeOverAHostileOrFailingEgress(t *testing.T) {
	s := newSTSStack(t)
	impostor := newTestCA(t, "impostor")
	type fake struct {
		name, code string
		ca         *testCA
		handler    http.HandlerFunc
	}
	var mu sync.Mutex
	got := map[string][][]byte{}
	var current atomic.Pointer[string]
	record := func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[*current.Load()] = append(got[*current.Load()], b)
		mu.Unlock()
	}
	hang := make(chan struct{})
	defer close(hang)
	for _, f := range []fake{
		{"bad_impostor_certificate", "sts_unavailable", impostor, func(w http.ResponseWriter, r *http.Request) { record(r) }},
		{"bad_sts_hangs", "sts_unavailable", s.ca, func(w http.ResponseWriter, r *http.Request) {
			record(r)
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}},
		{"bad_sts_fails", "sts_unavailable", s.ca, func(w http.ResponseWriter, r *http.Request) {
			record(r)
			w.WriteHeader(http.StatusInternalServerError)
		}},
		{"bad_sts_refuses_with_a_code", "sts_refused: RegionDisabledException:", s.ca, func(w http.ResponseWriter, r *http.Request) {
			record(r)
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>`+
				`<Code>RegionDisabledException</Code><Message>MARKER-MESSAGE-FROM-STS</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
		}},
	} {
		t.Run(f.name, func(t *testing.T) {
			srv := &http.Server{Handler: f.handler, TLSConfig: &tls.Config{Certificates: []tls.Certificate{f.ca.cert}},
				ErrorLog: log.New(io.Discard, "", 0)}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.ServeTLS(ln, "", "")
			defer srv.Close()
			current.Store(&f.name)
			s.relay.point(ln.Addr().String())
			_, stderr, exit := s.credentials(oidcActor, stsRole, "15m")
			if exit != 1 || !strings.Contains(stderr, "refused by the enclave: "+f.code) {
				t.Fatalf("exit %d: %s, want %s", exit, stderr, f.code)
			}
			if strings.Contains(stderr, "MARKER") {
				t.Fatal("STS's message reached the caller")
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	// The impostor completed no handshake, so it saw no request; the
	// others stand in for the pinned STS, and got the exchange as STS does
	// (the one that fails, once per attempt).
	if n := len(got["bad_impostor_certificate"]); n != 0 {
		t.Fatalf("the impostor got %d requests", n)
	}
	for name, want := range map[string]int{"bad_sts_hangs": 1, "bad_sts_fails": 3, "bad_sts_refuses_with_a_code": 1} {
		if len(got[name]) != want {
			t.Errorf("%s got %d requests, want %d", name, len(got[name]), want)
		}
		for _, b := range got[name] {
			if !bytes.Contains(b, []byte("Action=AssumeRoleWithWebIdentity")) {
				t.Errorf("%s got %q", name, b)
			}
		}
	}
	// An STS that hangs (or a parent that holds the tunnel open) while
	// several exchanges wait on it must not hold up any other method: the
	// exchanges wait outside the workers that sign. The derivation below
	// has a deadline well before the exchanges' (sts.timeout, 3s).
	t.Run("bad_sts_hangs_while_others_sign", func(t *testing.T) {
		release := make(chan struct{})
		var waiting atomic.Int32
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			waiting.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{s.ca.cert}}, ErrorLog: log.New(io.Discard, "", 0)}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.ServeTLS(ln, "", "")
		defer srv.Close()
		defer close(release)
		s.relay.point(ln.Addr().String())
		worker := s.e.client("worker")
		// A worker floods: more exchanges than the enclave lets wait.
		const hanging = service.MaxExchanges + 4
		done := make(chan error, hanging)
		for range hanging {
			go func() {
				_, err := worker.STSCredentials(context.Background(), oidcActor, stsRole, 15*time.Minute)
				done <- err
			}()
		}
		for deadline := time.Now().Add(5 * time.Second); waiting.Load() < service.MaxExchanges; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d exchanges reached the hanging STS", waiting.Load())
			}
		}
		cctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		if _, err := s.e.client("broker").DeriveAddress(cctx, omniHex, 0); err != nil {
			t.Fatalf("a derivation while %d exchanges hang: %v", hanging, err)
		}
		codes := map[api.Code]int{}
		for range hanging {
			codes[api.CodeOf(<-done)]++
		}
		if n := waiting.Load(); n != service.MaxExchanges {
			t.Errorf("%d exchanges reached STS at once, want the bound %d", n, service.MaxExchanges)
		}
		if codes[api.CodeSTSUnavailable] != service.MaxExchanges || codes[api.CodeOverloaded] != hanging-service.MaxExchanges {
			t.Errorf("answers %v: want %d sts_unavailable and %d overloaded", codes, service.MaxExchanges, hanging-service.MaxExchanges)
		}
	})
	s.relay.point(strings.TrimPrefix(s.weed.Endpoint, "https://"))
	if _, stderr, exit := s.credentials(oidcActor, stsRole, "15m"); exit != 0 {
		t.Fatalf("back on the real STS: %s", stderr)
	}
}

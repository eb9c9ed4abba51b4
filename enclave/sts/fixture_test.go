package sts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/parent/egress"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leaf issues a server certificate for 127.0.0.1, or for dnsName alone.
func (ca *testCA) leaf(t testing.TB, dnsName string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sts.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// seen is one request the fake STS received.
type seen struct {
	path          string
	authorization string
	form          url.Values
	body          string
}

// fakeSTS is a TLS server speaking STS's query protocol: it parses the
// form, records every request, and answers as answer says (attempt counts
// from 1).
type fakeSTS struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request, attempt int)

	mu   sync.Mutex
	seen []seen
}

func (f *fakeSTS) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.seen...)
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	body := readAll(r)
	form, _ := url.ParseQuery(body)
	f.mu.Lock()
	f.seen = append(f.seen, seen{path: r.URL.Path, authorization: r.Header.Get("Authorization"), form: form, body: body})
	n := len(f.seen)
	f.mu.Unlock()
	f.answer(w, r, n)
}

func readAll(r *http.Request) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// setup is what a fixture varies.
type setup struct {
	// serverCA signs the server's certificate; nil: the roots' CA.
	serverCA *testCA
	// serverName, if set, is the only name in the server's certificate
	// (which chains to the roots).
	serverName string
	// refuse: the egress allow-list does not hold the server.
	refuse bool
	// path is the endpoint's path.
	path    string
	timeout time.Duration
}

type fixture struct {
	sts    *fakeSTS
	client *Client
	// tunnels counts the CONNECTs the egress proxy saw, by allowed.
	mu      sync.Mutex
	tunnels map[bool]int
}

func newFixture(t testing.TB, s setup, answer func(w http.ResponseWriter, r *http.Request, attempt int)) *fixture {
	t.Helper()
	ca := newCA(t, "sts test root")
	serverCA := s.serverCA
	if serverCA == nil {
		serverCA = ca
	}
	f := &fixture{sts: &fakeSTS{answer: answer}, tunnels: map[bool]int{}}
	f.sts.srv = httptest.NewUnstartedServer(f.sts)
	f.sts.srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCA.leaf(t, s.serverName)}, MinVersion: tls.VersionTLS12}
	f.sts.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.sts.srv.StartTLS()
	t.Cleanup(f.sts.srv.Close)
	target := f.sts.srv.Listener.Addr().String()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	allow := []string{target}
	if s.refuse {
		allow = []string{"sts.amazonaws.com:443"}
	}
	p := &egress.Proxy{Allow: allow, Logger: slog.New(slog.DiscardHandler), OnTunnel: func(_ string, ok bool) {
		f.mu.Lock()
		f.tunnels[ok]++
		f.mu.Unlock()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	u := &url.URL{Scheme: "https", Host: target, Path: s.path}
	proxy := ln.Addr().String()
	c, err := New(Options{
		Endpoint: u, Roots: ca.pool(), Timeout: s.timeout,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

// Test values. The token and both secrets are distinct markers searched
// for in every output.
const (
	testRoleARN     = "arn:aws:iam::123456789012:role/signer-web"
	testSession     = "omni-actor-7"
	testToken       = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJUT0tFTi1NQVJLRVIifQ.c2lnbmF0dXJlLXRva2VuLW1hcmtlcg"
	testPolicy      = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	testDuration    = 1800
	testKeyID       = "ASIAEXAMPLEKEYID0001"
	testSecret      = "SECRET-ACCESS-KEY-MARKER/wJalrXUtnFEMI"
	testSessionTok  = "SESSION-TOKEN-MARKER//////////wEaCXVzLWVhc3QtMSJH"
	testAssumedRole = "arn:aws:sts::123456789012:assumed-role/signer-web/omni-actor-7"
	testSubject     = "spiffe://signer/actor/7"
	// messageMarker is in STS's error messages, which must never surface.
	messageMarker = "STS-MESSAGE-MARKER"
)

func testRequest() Request {
	return Request{RoleARN: testRoleARN, SessionName: testSession, Token: []byte(testToken), Policy: testPolicy, Duration: testDuration}
}

// answerXML is an AssumeRoleWithWebIdentityResponse.
type answerXML struct {
	keyID, secret, session, expiration, arn, subject string
}

func goodAnswer() answerXML {
	return answerXML{testKeyID, testSecret, testSessionTok, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), testAssumedRole, testSubject}
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (a answerXML) String() string {
	return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>` + esc(a.subject) + `</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>` + esc(a.arn) + `</Arn>
      <AssumedRoleId>AROAEXAMPLEROLEID:omni-actor-7</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>` + esc(a.session) + `</SessionToken>
      <SecretAccessKey>` + esc(a.secret) + `</SecretAccessKey>
      <Expiration>` + esc(a.expiration) + `</Expiration>
      <AccessKeyId>` + esc(a.keyID) + `</AccessKeyId>
    </Credentials>
    <Provider>https://signer.example/oidc</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`
}

func writeXML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// errorXML is an STS ErrorResponse whose message quotes the token and the
// marker, as a hostile or careless STS might.
func errorXML(code string) string {
	return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>` + esc(code) + `</Code>
    <Message>` + messageMarker + ` token ` + testToken + ` rejected</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>`
}

func answerWith(status int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) { writeXML(w, status, body) }
}

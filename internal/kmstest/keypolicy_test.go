package kmstest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

const (
	testKeyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	testRole   = "arn:aws:iam::111122223333:role/signer-role"
)

// parent is an account a hostile parent controls.
var parent = Account{ID: "444455556666", AccessKeyID: "ASIAPARENT", SecretAccessKey: "parent-secret", SessionToken: "parent-token",
	Aliases: map[string]string{"alias/signer": "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}

func value(b byte) []byte {
	v := make([]byte, 48)
	for i := range v {
		v[i] = b
	}
	return v
}

// pcrsOf is a document's PCRs 0..15: the given ones, zeros elsewhere.
func pcrsOf(set map[int]byte) map[int][]byte {
	out := map[int][]byte{}
	for i := range 16 {
		out[i] = make([]byte, 48)
	}
	for i, b := range set {
		out[i] = value(b)
	}
	return out
}

var (
	releaseA = map[int]byte{0: 0xa0, 1: 0xa1, 2: 0xa2}
	releaseB = map[int]byte{0: 0xb0, 1: 0xb1, 2: 0xb2}
	t0       = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
)

func testReleases(t *testing.T) *attestation.Releases {
	t.Helper()
	hex := func(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 48) }
	rs, err := attestation.ParseReleases([]byte(fmt.Sprintf(`{"releases": [
	 {"version": "A", "pcr0": "%s", "pcr1": "%s", "pcr2": "%s", "eif_sha256": "%s", "not_before": "2026-01-01T00:00:00Z", "not_after": "2026-06-01T00:00:00Z"},
	 {"version": "B", "pcr0": "%s", "pcr1": "%s", "pcr2": "%s", "eif_sha256": "%s", "not_before": "2026-03-01T00:00:00Z"}]}`,
		hex(0xa0), hex(0xa1), hex(0xa2), strings.Repeat("e", 64), hex(0xb0), hex(0xb1), hex(0xb2), strings.Repeat("e", 64))))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func renderedPolicy(t *testing.T) []byte {
	t.Helper()
	d, err := kmspolicy.Render(testReleases(t), kmspolicy.Options{Role: testRole, SignerID: "signer-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type policyFixture struct {
	kms  *Server
	auth *issuer.Authority
	rsa  *rsa.PrivateKey
	now  atomic.Pointer[time.Time]
}

func newPolicyFixture(t *testing.T, keyPolicy []byte) *policyFixture {
	t.Helper()
	f := &policyFixture{}
	f.now.Store(&t0)
	auth, err := issuer.NewAuthority(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.auth = auth
	if f.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	k, err := Start(Policy{KeyID: testKeyARN, Roots: []*x509.Certificate{auth.Root}, KeyPolicy: keyPolicy, Region: "us-east-1",
		AccessKeyID: "ASIAOPERATOR", SecretAccessKey: "operator-secret", SessionToken: "operator-token",
		Clock: func() time.Time { return *f.now.Load() }, Others: []Account{parent}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	f.kms = k
	return f
}

// document is an attestation document with these PCRs, binding the
// fixture's RSA key, under root (the fixture's when nil).
func (f *policyFixture) document(t *testing.T, pcrs map[int][]byte, root *issuer.Authority) []byte {
	t.Helper()
	if root == nil {
		root = f.auth
	}
	is, err := root.NewIssuer(time.Now(), issuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&f.rsa.PublicKey)
	doc, err := is.Issue(issuer.Payload{Timestamp: time.Now(), PCRs: pcrs, PublicKey: spki})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func (f *policyFixture) client(a Account) *kms.Client { return f.kms.Owner(a).client }

func encryptionContext(signerID string) map[string]string {
	return map[string]string{api.KMSContextKey: signerID}
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// The policy `signerctl kms policy` renders, enforced: a document of
// either release gets a data key, only to its Recipient; a document mixing
// the releases' PCRs, of a debug enclave, under another root, without a
// Recipient, for another signer_id, outside a release's window, or from
// another account's credentials gets nothing.
func TestRenderedKeyPolicyIsEnforced(t *testing.T) {
	other, err := issuer.NewAuthority(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := newPolicyFixture(t, renderedPolicy(t))
	operator := f.kms.policy.Operator()
	for _, tc := range []struct {
		name     string
		pcrs     map[int][]byte // nil: no Recipient
		root     *issuer.Authority
		signerID string
		at       time.Time
		as       Account
		want     string // error code, "" for a data key
		reason   string // in the refusal
	}{
		{name: "release_a", pcrs: pcrsOf(releaseA)},
		{name: "release_b", pcrs: pcrsOf(releaseB)},
		{name: "release_b_after_a_expired", pcrs: pcrsOf(releaseB), at: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)},
		{name: "release_a_at_its_not_before", pcrs: pcrsOf(releaseA), at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "bad_pcr1_of_the_other_release", pcrs: pcrsOf(map[int]byte{0: 0xa0, 1: 0xb1, 2: 0xa2}), want: "AccessDeniedException",
			reason: `statement 2 ("Release A"): kms:RecipientAttestation:PCR1 does not hold; statement 3 ("Release B"): kms:RecipientAttestation:PCR0 does not hold`},
		{name: "bad_pcr0_of_the_other_release", pcrs: pcrsOf(map[int]byte{0: 0xb0, 1: 0xa1, 2: 0xa2}), want: "AccessDeniedException"},
		{name: "bad_debug_enclave", pcrs: pcrsOf(nil), want: "AccessDeniedException"},
		{name: "bad_untrusted_root", pcrs: pcrsOf(releaseA), root: other, want: "ValidationException"},
		{name: "bad_no_recipient", want: "AccessDeniedException", reason: "kms:RecipientAttestation:PCR0 is not in the request"},
		{name: "bad_other_signer_id", pcrs: pcrsOf(releaseA), signerID: "signer-b", want: "AccessDeniedException", reason: "nitro-signer:signer_id does not hold"},
		{name: "bad_release_a_expired", pcrs: pcrsOf(releaseA), at: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), want: "AccessDeniedException", reason: "aws:CurrentTime does not hold"},
		{name: "bad_release_b_not_yet", pcrs: pcrsOf(releaseB), at: time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC), want: "AccessDeniedException"},
		{name: "bad_parents_account", pcrs: pcrsOf(releaseA), as: parent, want: "AccessDeniedException", reason: "User: arn:aws:iam::444455556666:role/signer-role is not authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = t0
			}
			f.now.Store(&at)
			signerID := tc.signerID
			if signerID == "" {
				signerID = "signer-a"
			}
			as := tc.as
			if as.ID == "" {
				as = operator
			}
			in := &kms.GenerateDataKeyInput{KeyId: &[]string{testKeyARN}[0], KeySpec: types.DataKeySpecAes256, EncryptionContext: encryptionContext(signerID)}
			if tc.pcrs != nil {
				in.Recipient = &types.RecipientInfo{AttestationDocument: f.document(t, tc.pcrs, tc.root), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
			}
			out, err := f.client(as).GenerateDataKey(context.Background(), in)
			if code := errorCode(err); code != tc.want {
				t.Fatalf("GenerateDataKey: %q (%v), want %q", code, err, tc.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("refusal %v, want it to say %q", err, tc.reason)
				}
				return
			}
			if len(out.Plaintext) != 0 || len(out.CiphertextForRecipient) == 0 {
				t.Fatalf("answered %d plaintext bytes, %d for the recipient", len(out.Plaintext), len(out.CiphertextForRecipient))
			}
			// The same document decrypts what it was given; the other
			// release's does too (a rollout), a mixed one does not.
			dec := func(pcrs map[int][]byte) error {
				_, err := f.client(as).Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: encryptionContext(signerID),
					Recipient: &types.RecipientInfo{AttestationDocument: f.document(t, pcrs, nil), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}})
				return err
			}
			if err := dec(tc.pcrs); err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if err := dec(pcrsOf(map[int]byte{0: 0xb0, 1: 0xa1, 2: 0xb2})); errorCode(err) != "AccessDeniedException" {
				t.Fatalf("Decrypt with mixed PCRs: %v", err)
			}
		})
	}
}

// The control: the local KMS reads a list of values as AWS does — any one
// of them — so a policy listing both releases' PCRs under one statement
// releases data keys to an image that is neither. This is the drift `kms
// check` calls mixing.
func TestListValuedPolicyLetsReleasesMix(t *testing.T) {
	d, err := kmspolicy.Parse(renderedPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	a, b := &d.Statements[1], &d.Statements[2]
	for i := range a.Conditions {
		for _, c := range b.Conditions {
			if c.Key == a.Conditions[i].Key && strings.HasPrefix(c.Key, kmspolicy.PCRKeyPrefix) {
				a.Conditions[i].Values = append(a.Conditions[i].Values, c.Values...)
			}
		}
	}
	d.Statements = d.Statements[:2]
	merged, _ := d.Marshal()
	f := newPolicyFixture(t, merged)
	mixed := f.document(t, pcrsOf(map[int]byte{0: 0xa0, 1: 0xb1, 2: 0xa2}), nil)
	_, err = f.client(f.kms.policy.Operator()).GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: &[]string{testKeyARN}[0],
		KeySpec: types.DataKeySpecAes256, EncryptionContext: encryptionContext("signer-a"),
		Recipient: &types.RecipientInfo{AttestationDocument: mixed, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}})
	if err != nil {
		t.Fatalf("the list-valued policy refused the mixed document (so the local KMS does not read lists as AWS does): %v", err)
	}
	want, _ := kmspolicy.Render(testReleases(t), kmspolicy.Options{Role: testRole, SignerID: "signer-a"})
	var mixing int
	for _, diff := range kmspolicy.Compare(want, d) {
		if diff.Kind == kmspolicy.KindMixing {
			mixing++
		}
	}
	if mixing != 3 {
		t.Fatalf("kms check names %d mixing conditions, want 3", mixing)
	}
}

// A drifted administrators' statement ("kms:*", as the default key policy
// has) lets the account's principals — the parent's instance role among
// them — decrypt a sealed data key in plaintext with no Recipient.
func TestBroadAdministratorsStatementGivesPlaintext(t *testing.T) {
	d, err := kmspolicy.Parse(renderedPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newPolicyFixture(t, renderedPolicy(t))
	operator := f.kms.policy.Operator()
	out, err := f.client(operator).GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: &[]string{testKeyARN}[0],
		KeySpec: types.DataKeySpecAes256, EncryptionContext: encryptionContext("signer-a"),
		Recipient: &types.RecipientInfo{AttestationDocument: f.document(t, pcrsOf(releaseA), nil), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.kms.Owner(operator).Unwrap(context.Background(), "signer-a", out.CiphertextBlob); errorCode(err) != "AccessDeniedException" {
		t.Fatalf("the rendered policy let the role decrypt without a Recipient: %v", err)
	}
	d.Statements[0].Action = []string{"kms:*"}
	broad, _ := d.Marshal()
	g := newPolicyFixture(t, broad)
	out, err = g.client(operator).GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: &[]string{testKeyARN}[0],
		KeySpec: types.DataKeySpecAes256, EncryptionContext: encryptionContext("signer-a")})
	if err != nil || len(out.Plaintext) != 32 {
		t.Fatalf("the broad policy: %v, %d plaintext bytes", err, len(out.Plaintext))
	}
	plain, err := g.kms.Owner(operator).Unwrap(context.Background(), "signer-a", out.CiphertextBlob)
	if err != nil || string(plain) != string(out.Plaintext) {
		t.Fatalf("Decrypt without a Recipient under the broad policy: %v", err)
	}
}

func TestStartRefusesKeyPolicies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
	}{
		{"bad_not_a_policy", Policy{KeyPolicy: []byte(`{"Statement": 1}`)}},
		{"bad_duplicate_key", Policy{KeyPolicy: []byte(`{"Version":"2012-10-17","Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`)}},
		{"bad_operator_not_evaluated", Policy{KeyPolicy: []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"a"}}}]}`)}},
		{"bad_both_pcrs_and_policy", Policy{KeyPolicy: renderedPolicy(t), PCRs: map[int][]byte{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.policy.KeyID, tc.policy.Region = testKeyARN, "us-east-1"
			if s, err := Start(tc.policy); err == nil {
				s.Close()
				t.Fatal("started")
			}
		})
	}
}

// A rollout's order through put-key-policy: B is refused until the policy
// lists it; after A is retired, A is refused. KeyPolicy gives back what
// was put, as get-key-policy does.
func TestPutKeyPolicyDecidesTheNextCall(t *testing.T) {
	render := func(versions ...string) []byte {
		rs := testReleases(t)
		var keep []attestation.Release
		for _, r := range rs.Releases {
			if strings.Contains(strings.Join(versions, ","), r.Version) {
				keep = append(keep, r)
			}
		}
		rs.Releases = keep
		d, err := kmspolicy.Render(rs, kmspolicy.Options{Role: testRole, SignerID: "signer-a"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := d.Marshal()
		return b
	}
	f := newPolicyFixture(t, render("A"))
	operator := f.kms.policy.Operator()
	gdk := func(release map[int]byte) error {
		_, err := f.client(operator).GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: &[]string{testKeyARN}[0],
			KeySpec: types.DataKeySpecAes256, EncryptionContext: encryptionContext("signer-a"),
			Recipient: &types.RecipientInfo{AttestationDocument: f.document(t, pcrsOf(release), nil), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}})
		return err
	}
	steps := []struct {
		put  []byte
		a, b string // error codes
	}{
		{nil, "", "AccessDeniedException"},
		{render("A", "B"), "", ""},
		{render("B"), "AccessDeniedException", ""},
	}
	for i, step := range steps {
		if step.put != nil {
			if err := f.kms.PutKeyPolicy(step.put); err != nil {
				t.Fatal(err)
			}
			if string(f.kms.KeyPolicy()) != string(step.put)+"\n" {
				t.Fatalf("step %d: KeyPolicy is not what was put", i)
			}
		}
		if got := errorCode(gdk(releaseA)); got != step.a {
			t.Fatalf("step %d: release A: %q, want %q", i, got, step.a)
		}
		if got := errorCode(gdk(releaseB)); got != step.b {
			t.Fatalf("step %d: release B: %q, want %q", i, got, step.b)
		}
	}
	if err := f.kms.PutKeyPolicy([]byte(`{"Statement":[]}`)); err == nil {
		t.Fatal("a malformed policy was put")
	}
}

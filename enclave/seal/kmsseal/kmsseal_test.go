package kmsseal_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/seal/kmsseal"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
	"github.com/nitro-signer/nitro-signer/parent/egress"
)

const (
	keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	// parentKeyARN is a key in an account the parent controls, under the
	// same alias as the operator's key.
	parentKeyARN = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	alias        = "alias/signer"
)

// parentAccount is an AWS account the hostile parent controls.
var parentAccount = kmstest.Account{
	ID: "444455556666", AccessKeyID: "ASIAPARENTOWNACCOUNT", SecretAccessKey: "parent-secret-access-key",
	SessionToken: "parent-session-token", Aliases: map[string]string{alias: parentKeyARN},
}

// simOptions are the simulated NSM's options, and simNSM what these
// tests use of it; openSimulator opens one, or skips the test when the
// simulator is not compiled in (sim_nsmsim_test.go, sim_other_test.go).
type simOptions struct {
	StateDir, Binary string
	Debug            bool
	Clock            func() time.Time
}

type simNSM interface {
	nsm.Module
	Root() *x509.Certificate
}

type fixture struct {
	dir    string
	kms    *kmstest.Server
	policy kmstest.Policy
	egress string // unix socket path
	// relayed records every byte the egress proxy relayed towards KMS.
	mu      sync.Mutex
	relayed bytes.Buffer
}

func simulator(t *testing.T, dir, image string, debug bool) simNSM {
	t.Helper()
	bin := filepath.Join(dir, image)
	if _, err := os.Stat(bin); err != nil {
		os.WriteFile(bin, []byte(image), 0o644)
	}
	return openSimulator(t, simOptions{StateDir: dir, Binary: bin, Debug: debug, Clock: time.Now})
}

type recordingConn struct {
	net.Conn
	f *fixture
}

func (c recordingConn) Write(p []byte) (int, error) {
	c.f.mu.Lock()
	c.f.relayed.Write(p)
	c.f.mu.Unlock()
	return c.Conn.Write(p)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with the local KMS's policy changed by
// edit, given the fixture (whose directory holds the simulators' root).
func newFixtureWith(t *testing.T, edit func(f *fixture, p *kmstest.Policy)) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	sim := simulator(t, f.dir, "image-a", false)
	pcrs := map[int][]byte{}
	for i := range 3 {
		p, _ := sim.DescribePCR(i)
		pcrs[i] = p.Value
	}
	f.policy = kmstest.Policy{
		KeyID: keyARN, Alias: alias, Roots: []*x509.Certificate{sim.Root()}, PCRs: pcrs, Region: "us-east-1",
		AccessKeyID: "ASIATESTACCESSKEY", SecretAccessKey: "test-secret-access-key", SessionToken: "test-session-token",
		Others: []kmstest.Account{parentAccount},
	}
	if edit != nil {
		edit(f, &f.policy)
	}
	k, err := kmstest.Start(f.policy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	f.kms = k
	f.egress = filepath.Join(f.dir, "egress.sock")
	ln, err := net.Listen("unix", f.egress)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &egress.Proxy{Allow: []string{k.HostPort()}, Logger: slog.New(slog.DiscardHandler),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return recordingConn{c, f}, nil
		}}
	go p.Serve(ctx, ln)
	t.Cleanup(cancel)
	return f
}

func (f *fixture) sealer(t *testing.T, sim simNSM, endpoint string) *kmsseal.Sealer {
	t.Helper()
	s, err := f.sealerFor(sim, endpoint, keyARN, f.policy.Operator())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sealerFor is a sealer for keyID whose parent supplies the credentials of
// account a.
func (f *fixture) sealerFor(sim simNSM, endpoint, keyID string, a kmstest.Account) (*kmsseal.Sealer, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(f.kms.CAPEM))
	u, _ := url.Parse(endpoint)
	return kmsseal.New(kmsseal.Options{
		KeyID: keyID, Region: "us-east-1", Endpoint: u, Roots: roots,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", f.egress)
		},
		Credentials: func(context.Context) (*hostproto.Credentials, error) {
			return hostproto.NewCredentials(a.AccessKeyID, a.SecretAccessKey, a.SessionToken, time.Now().Add(time.Hour)), nil
		},
		Attest: func(pub []byte) ([]byte, error) { return sim.Attest(nsm.AttestRequest{PublicKey: pub}) },
	})
}

func secretBytes(b byte) []byte { return bytes.Repeat([]byte{b, b ^ 0x5a, b ^ 0xa5, ^b}, 8) }

func secrets() *seal.Keyring {
	a, _ := keyring.NewSecret(secretBytes(0x11))
	b, _ := keyring.NewSecret(secretBytes(0x22))
	return &seal.Keyring{Generation: 2, Epochs: []*keyring.Secret{a, b}}
}

func TestSealAndUnsealThroughLocalKMS(t *testing.T) {
	f := newFixture(t)
	s := f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL)
	in := secrets()
	blob, err := seal.Seal(context.Background(), s, "signer-a", in, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Another enclave with the same image (a restart, a replica) unseals.
	again := f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL)
	out, _, err := seal.Open(context.Background(), again, "signer-a", blob)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Epochs[1].Equal(in.Epochs[1]) || !out.Epochs[0].Equal(in.Epochs[0]) || out.Generation != 2 {
		t.Fatal("unsealed keyring differs")
	}
	if f.kms.Calls("GenerateDataKey") != 1 || f.kms.Calls("Decrypt") != 1 {
		t.Fatalf("calls: %d GenerateDataKey, %d Decrypt", f.kms.Calls("GenerateDataKey"), f.kms.Calls("Decrypt"))
	}
	// The parent relayed only TLS: neither the request's JSON nor the
	// credentials' secret crossed it in the clear.
	f.mu.Lock()
	relayed := f.relayed.Bytes()
	f.mu.Unlock()
	if len(relayed) == 0 || bytes.Contains(relayed, []byte("Recipient")) || bytes.Contains(relayed, []byte(f.policy.SessionToken)) {
		t.Fatalf("egress relayed %d bytes, with plaintext", len(relayed))
	}
	// The wrapped key is bound to the signer_id by the encryption context.
	if _, _, err := seal.Open(context.Background(), again, "signer-b", blob); !errors.Is(err, seal.ErrMismatch) {
		t.Fatalf("other signer_id: %v", err)
	}
}

func TestLocalKMSRefusesOtherPCRs(t *testing.T) {
	f := newFixture(t)
	blob, err := seal.Seal(context.Background(), f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL), "signer-a", secrets(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other := f.sealer(t, simulator(t, f.dir, "image-b", false), f.kms.URL)
	_, _, err = seal.Open(context.Background(), other, "signer-a", blob)
	if !errors.Is(err, seal.ErrUnwrap) || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), "PCR0") {
		t.Fatalf("other image: %v", err)
	}
	if _, err := seal.Seal(context.Background(), other, "signer-a", secrets(), time.Now()); err == nil {
		t.Fatal("another image obtained a data key")
	}
}

func TestLocalKMSRefusesDebugEnclave(t *testing.T) {
	f := newFixture(t)
	blob, _ := seal.Seal(context.Background(), f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL), "signer-a", secrets(), time.Now())
	debug := f.sealer(t, simulator(t, f.dir, "image-a", true), f.kms.URL)
	_, _, err := seal.Open(context.Background(), debug, "signer-a", blob)
	if !errors.Is(err, seal.ErrUnwrap) || !strings.Contains(err.Error(), "debug") {
		t.Fatalf("debug enclave: %v", err)
	}
}

func TestKMSRefusalIsReported(t *testing.T) {
	f := newFixture(t)
	s := f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL)
	blob, _ := seal.Seal(context.Background(), s, "signer-a", secrets(), time.Now())
	why := "DisabledException"
	f.kms.Refuse.Store(&why)
	_, _, err := seal.Open(context.Background(), s, "signer-a", blob)
	if !errors.Is(err, seal.ErrUnwrap) || !strings.Contains(err.Error(), "DisabledException") {
		t.Fatalf("refusing KMS: %v", err)
	}
}

func TestEgressRefusesTargetsOffTheAllowList(t *testing.T) {
	f := newFixture(t)
	other, err := kmstest.Start(f.policy)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s := f.sealer(t, simulator(t, f.dir, "image-a", false), other.URL)
	if _, err := seal.Seal(context.Background(), s, "signer-a", secrets(), time.Now()); err == nil || other.Calls("GenerateDataKey") != 0 {
		t.Fatalf("a target off the allow-list was reached: %v", err)
	}
}

// A sealed keyring whose wrapped key KMS rejects as invalid is that file's
// fault (ErrAuthentication), so the enclave falls back past it; KMS
// refusing for any other reason is ErrUnwrap, and the enclave waits.
func TestInvalidWrappedKeyIsTheFilesFault(t *testing.T) {
	f := newFixture(t)
	s := f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL)
	blob, _ := seal.Seal(context.Background(), s, "signer-a", secrets(), time.Now())
	h, _ := seal.ParseHeader(blob)
	i := bytes.Index(blob, h.WrappedKey)
	blob[i+len(h.WrappedKey)-1] ^= 1
	_, _, err := seal.Open(context.Background(), s, "signer-a", blob)
	if !errors.Is(err, seal.ErrAuthentication) || !errors.Is(err, seal.ErrWrappedKey) || !strings.Contains(err.Error(), "InvalidCiphertextException") {
		t.Fatalf("altered wrapped key: %v", err)
	}
}

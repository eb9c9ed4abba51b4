package nsmsim_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func writeBinary(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "enclave")
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// simOptions are the simulator's options, and simNSM what these tests use
// of it; openSimulator opens one, or skips the test when the simulator is
// not compiled in (sim_nsmsim_test.go, sim_other_test.go).
type simOptions struct {
	StateDir, Binary string
	Debug            bool
	Clock            func() time.Time
}

type simNSM interface {
	nsm.Module
	Root() *x509.Certificate
	Manifest() ([]byte, error)
	WriteManifest(path string) error
}

func open(t *testing.T, dir, binary string, debug bool, clock *fakeClock) simNSM {
	t.Helper()
	return openSimulator(t, simOptions{StateDir: dir, Binary: binary, Debug: debug, Clock: clock.Now})
}

func devRoot(t *testing.T, dir string) []*x509.Certificate {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dir, issuer.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := attestation.ParseRootsPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return roots
}

func TestSimulatedDocumentVerifiesUnderDevelopmentRoot(t *testing.T) {
	dir, clock := t.TempDir(), &fakeClock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	binary := writeBinary(t, "enclave binary v1")
	sim := open(t, dir, binary, false, clock)
	req := nsm.AttestRequest{UserData: []byte{0xa0}, Nonce: []byte("fresh nonce 0123"), PublicKey: []byte("spki")}
	doc, err := sim.Attest(req)
	if err != nil {
		t.Fatal(err)
	}
	pcrs, err := measure(t, binary)
	if err != nil {
		t.Fatal(err)
	}
	d, err := attestation.Verify(doc, attestation.Policy{
		Roots: devRoot(t, dir), At: clock.now, MaxAge: time.Minute,
		PCRs:  map[int][]byte{0: pcrs[0], 1: pcrs[1], 2: pcrs[2]},
		Nonce: req.Nonce, PublicKey: req.PublicKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.UserData, req.UserData) || d.Debug || len(d.PCRs) != 16 {
		t.Fatalf("document: user_data %x debug %v %d PCRs", d.UserData, d.Debug, len(d.PCRs))
	}
	for i := 0; i < 16; i++ {
		got, err := sim.DescribePCR(i)
		if err != nil || !bytes.Equal(got.Value, d.PCRs[i]) || !got.Locked {
			t.Fatalf("DescribePCR(%d) = %x %v, document has %x", i, got.Value, err, d.PCRs[i])
		}
	}
	// Never trusted by default: under the AWS root it fails.
	if _, err := attestation.Verify(doc, attestation.Policy{At: clock.now}); !errors.Is(err, attestation.ErrUntrustedChain) {
		t.Fatalf("under the AWS root: %v, want ErrUntrustedChain", err)
	}
}

// TestSimulatedDocumentHasTheRealFormat checks the layout byte for byte
// against what the NSM emits: untagged COSE_Sign1, protected a1013822, empty
// unprotected map, 96-byte signature, an indefinite-length payload map of
// nine entries (bf … ff, as the newest real document has it) in the NSM's
// key order, PCRs 0..15 of 48 bytes, cabundle root first.
func TestSimulatedDocumentHasTheRealFormat(t *testing.T) {
	dir, clock := t.TempDir(), &fakeClock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	doc, err := open(t, dir, writeBinary(t, "x"), false, clock).Attest(nsm.AttestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(doc, []byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0}) {
		t.Fatalf("document starts %x", doc[:8])
	}
	var msg []cbor.RawMessage
	if err := cbor.Unmarshal(doc, &msg); err != nil || len(msg) != 4 {
		t.Fatalf("COSE_Sign1: %v, %d items", err, len(msg))
	}
	var body, sig []byte
	if err := cbor.Unmarshal(msg[2], &body); err != nil {
		t.Fatal(err)
	}
	if err := cbor.Unmarshal(msg[3], &sig); err != nil || len(sig) != 96 {
		t.Fatalf("signature: %v, %d bytes", err, len(sig))
	}
	if body[0] != 0xbf || body[len(body)-1] != 0xff {
		t.Fatalf("payload head %x and last byte %x, want bf and ff (indefinite-length map)", body[0], body[len(body)-1])
	}
	dec := cbor.NewDecoder(bytes.NewReader(body[1 : len(body)-1]))
	wantKeys := []string{"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle", "public_key", "user_data", "nonce"}
	for _, want := range wantKeys {
		var key string
		var value cbor.RawMessage
		if err := dec.Decode(&key); err != nil || key != want {
			t.Fatalf("key %q (%v), want %q", key, err, want)
		}
		if err := dec.Decode(&value); err != nil {
			t.Fatal(err)
		}
		switch key {
		case "public_key", "user_data", "nonce":
			if value[0] != 0xf6 {
				t.Errorf("%s absent encodes as %x, want null", key, value[0])
			}
		case "timestamp":
			if value[0]>>5 != 0 {
				t.Errorf("timestamp is not an unsigned integer")
			}
		case "pcrs":
			var m map[uint64][]byte
			if err := cbor.Unmarshal(value, &m); err != nil || len(m) != 16 {
				t.Fatalf("pcrs: %v, %d", err, len(m))
			}
			for i, v := range m {
				if i > 15 || len(v) != 48 {
					t.Errorf("PCR%d has %d bytes", i, len(v))
				}
			}
		case "cabundle":
			var certs [][]byte
			if err := cbor.Unmarshal(value, &certs); err != nil || len(certs) != 2 {
				t.Fatalf("cabundle: %v, %d", err, len(certs))
			}
			if !bytes.Equal(certs[0], devRoot(t, dir)[0].Raw) {
				t.Error("cabundle[0] is not the development root")
			}
		}
	}
	if n := dec.NumBytesRead(); n != len(body)-2 {
		t.Fatalf("the nine entries end at byte %d of %d, want the break right after them", n+1, len(body))
	}
}

func TestChangedBinaryChangesPCR0AndPCR2(t *testing.T) {
	a, err := measure(t, writeBinary(t, "enclave v1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := measure(t, writeBinary(t, "enclave v2"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[0], b[0]) || bytes.Equal(a[2], b[2]) {
		t.Fatal("PCR0 or PCR2 did not change with the binary")
	}
	if !bytes.Equal(a[1], b[1]) {
		t.Fatal("PCR1 changed with the binary")
	}
	if bytes.Equal(a[0], a[2]) {
		t.Fatal("PCR0 equals PCR2")
	}
}

func TestDebugSimulatorIsRejectedUnlessAllowed(t *testing.T) {
	dir, clock := t.TempDir(), &fakeClock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	doc, err := open(t, dir, writeBinary(t, "x"), true, clock).Attest(nsm.AttestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attestation.Verify(doc, attestation.Policy{Roots: devRoot(t, dir), At: clock.now}); !errors.Is(err, attestation.ErrDebug) {
		t.Fatalf("debug document: %v, want ErrDebug", err)
	}
	if _, err := attestation.Verify(doc, attestation.Policy{Roots: devRoot(t, dir), At: clock.now, AllowDebug: true}); err != nil {
		t.Fatalf("debug document allowed: %v", err)
	}
}

func TestDevelopmentRootIsCreatedOnceAndReused(t *testing.T) {
	dir, clock := t.TempDir(), &fakeClock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	binary := writeBinary(t, "x")
	first, err := open(t, dir, binary, false, clock).Attest(nsm.AttestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rootBefore := devRoot(t, dir)[0]
	clock.now = clock.now.Add(24 * time.Hour)
	second, err := open(t, dir, binary, false, clock).Attest(nsm.AttestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !devRoot(t, dir)[0].Equal(rootBefore) {
		t.Fatal("the development root was recreated")
	}
	if _, err := attestation.Verify(first, attestation.Policy{Roots: []*x509.Certificate{rootBefore}, At: clock.now.Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := attestation.Verify(second, attestation.Policy{Roots: []*x509.Certificate{rootBefore}, At: clock.now}); err != nil {
		t.Fatal(err)
	}
}

func TestLeafIsRenewedBeforeItExpires(t *testing.T) {
	dir, clock := t.TempDir(), &fakeClock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	sim := open(t, dir, writeBinary(t, "x"), false, clock)
	roots := devRoot(t, dir)
	for range 5 {
		doc, err := sim.Attest(nsm.AttestRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := attestation.Verify(doc, attestation.Policy{Roots: roots, At: clock.now, MaxAge: time.Second}); err != nil {
			t.Fatalf("at %s: %v", clock.now, err)
		}
		clock.now = clock.now.Add(100 * time.Minute)
	}
}

func TestRequestBoundsAreEnforced(t *testing.T) {
	sim := open(t, t.TempDir(), writeBinary(t, "x"), false, &fakeClock{time.Now()})
	for name, req := range map[string]nsm.AttestRequest{
		"user_data":  {UserData: make([]byte, nsm.MaxUserData+1)},
		"nonce":      {Nonce: make([]byte, nsm.MaxNonce+1)},
		"public_key": {PublicKey: make([]byte, nsm.MaxPublicKey+1)},
	} {
		if _, err := sim.Attest(req); !errors.Is(err, nsm.ErrRequest) {
			t.Errorf("%s oversized: %v, want ErrRequest", name, err)
		}
	}
	if _, err := sim.DescribePCR(32); !errors.Is(err, nsm.ErrRequest) {
		t.Errorf("DescribePCR(32): %v, want ErrRequest", err)
	}
}

// TestSimulatedAndRealDocumentsShareOneVerifier runs a simulated document
// and a real AWS one through the same exported entry point with the same
// policy shape; only the roots and the time differ.
func TestSimulatedAndRealDocumentsShareOneVerifier(t *testing.T) {
	dir, clock := t.TempDir(), &fakeClock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	sim, err := open(t, dir, writeBinary(t, "x"), false, clock).Attest(nsm.AttestRequest{Nonce: []byte("n")})
	if err != nil {
		t.Fatal(err)
	}
	real := testvectors.Read(t, "attestation", "op-enclave-2024-02-26-nondebug.cbor")
	for _, c := range []struct {
		doc    []byte
		policy attestation.Policy
	}{
		{sim, attestation.Policy{Roots: devRoot(t, dir), At: clock.now}},
		{real, attestation.Policy{At: time.Unix(1708930921, 0)}},
	} {
		if _, err := attestation.Verify(c.doc, c.policy); err != nil {
			t.Fatal(err)
		}
	}
}

// TestManifestIsTheSimulatedPCRs: the simulator's pcrs.json is read by the
// one strict manifest parser and pins exactly the PCRs its documents carry.
func TestManifestIsTheSimulatedPCRs(t *testing.T) {
	dir, clock := t.TempDir(), &fakeClock{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	s := open(t, dir, writeBinary(t, "image"), false, clock)
	path := filepath.Join(dir, "pcrs.json")
	if err := s.WriteManifest(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := attestation.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.PCRs) != 3 {
		t.Fatalf("manifest pins %d PCRs, want 3", len(m.PCRs))
	}
	for i, v := range m.PCRs {
		pcr, err := s.DescribePCR(i)
		if err != nil || !bytes.Equal(pcr.Value, v) {
			t.Fatalf("PCR%d: manifest %x, simulator %x (%v)", i, v, pcr.Value, err)
		}
	}
}

package attestation_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
)

// sidecar is the part of a vector's .json sidecar that the tests use.
type sidecar struct {
	File      string `json:"file"`
	DebugMode bool   `json:"debug_mode"`
	Payload   struct {
		ModuleID     string            `json:"module_id"`
		TimestampMS  int64             `json:"timestamp_ms"`
		PCRCount     int               `json:"pcr_count"`
		PCRsNonzero  map[string]string `json:"pcrs_nonzero"`
		PublicKeyHex *string           `json:"public_key_hex"`
		UserDataHex  *string           `json:"user_data_hex"`
		NonceHex     *string           `json:"nonce_hex"`
	} `json:"payload"`
	Verification struct {
		VerifyAtUnix int64 `json:"verify_at_unix"`
	} `json:"verification"`
}

type realVector struct {
	name string
	doc  []byte
	meta sidecar
}

// readDoc reads a vector document: raw CBOR (.cbor) or standard base64 (.b64).
func readDoc(t *testing.T, name string) []byte {
	t.Helper()
	b := testvectors.Read(t, "attestation", name)
	if strings.HasSuffix(name, ".b64") {
		d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return d
	}
	return b
}

func realVectors(t *testing.T) []realVector {
	t.Helper()
	var out []realVector
	for _, path := range testvectors.Glob(t, "attestation", "*.json") {
		base := filepath.Base(path)
		if strings.HasPrefix(base, "aws-nitro-root") || strings.Contains(base, "corrupt") {
			continue
		}
		var meta sidecar
		if err := json.Unmarshal(testvectors.Read(t, "attestation", base), &meta); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		out = append(out, realVector{name: meta.File, doc: readDoc(t, meta.File), meta: meta})
	}
	if len(out) < 9 {
		t.Fatalf("found %d real documents, want 9", len(out))
	}
	return out
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// optionalHex decodes a sidecar's optional hex field (null means absent).
func optionalHex(t *testing.T, s *string) []byte {
	if s == nil {
		return nil
	}
	return unhex(t, *s)
}

func TestAWSRootMatchesVector(t *testing.T) {
	root, err := attestation.AWSRoot()
	if err != nil {
		t.Fatal(err)
	}
	roots, err := attestation.ParseRootsPEM(testvectors.Read(t, "attestation", "aws-nitro-root-g1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root.Raw, roots[0].Raw) {
		t.Fatal("embedded AWS root differs from the published root")
	}
}

func TestRealDocumentsVerifyAtRecordedTime(t *testing.T) {
	for _, v := range realVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			at := time.Unix(v.meta.Verification.VerifyAtUnix, 0)
			pins := map[int][]byte{}
			for k, val := range v.meta.Payload.PCRsNonzero {
				var i int
				if _, err := fmtSscan(k, &i); err != nil {
					t.Fatal(err)
				}
				pins[i] = unhex(t, val)
			}
			doc, err := attestation.Verify(v.doc, attestation.Policy{At: at, PCRs: pins, AllowDebug: v.meta.DebugMode})
			if err != nil {
				t.Fatalf("Verify at %s: %v", at.UTC(), err)
			}
			if doc.ModuleID != v.meta.Payload.ModuleID {
				t.Errorf("module_id %q, sidecar %q", doc.ModuleID, v.meta.Payload.ModuleID)
			}
			if doc.Timestamp.UnixMilli() != v.meta.Payload.TimestampMS {
				t.Errorf("timestamp %d, sidecar %d", doc.Timestamp.UnixMilli(), v.meta.Payload.TimestampMS)
			}
			if len(doc.PCRs) != v.meta.Payload.PCRCount {
				t.Errorf("%d PCRs, sidecar %d", len(doc.PCRs), v.meta.Payload.PCRCount)
			}
			if doc.Debug != v.meta.DebugMode {
				t.Errorf("Debug = %v, sidecar %v", doc.Debug, v.meta.DebugMode)
			}
			for name, pair := range map[string][2][]byte{
				"public_key": {doc.PublicKey, optionalHex(t, v.meta.Payload.PublicKeyHex)},
				"user_data":  {doc.UserData, optionalHex(t, v.meta.Payload.UserDataHex)},
				"nonce":      {doc.Nonce, optionalHex(t, v.meta.Payload.NonceHex)},
			} {
				if !bytes.Equal(pair[0], pair[1]) || (pair[0] == nil) != (pair[1] == nil) {
					t.Errorf("%s = %x, sidecar %x", name, pair[0], pair[1])
				}
			}
			if len(doc.Chain) < 2 || !doc.Chain[len(doc.Chain)-1].Equal(mustAWSRoot(t)) {
				t.Errorf("chain does not end at the AWS root")
			}
		})
	}
}

func TestRealDocumentsFailNowAsExpired(t *testing.T) {
	now := func() time.Time { return time.Now() }
	for _, v := range realVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			_, err := attestation.Verify(v.doc, attestation.Policy{Clock: now, AllowDebug: true})
			if !errors.Is(err, attestation.ErrCertificateExpired) {
				t.Fatalf("Verify now: %v, want ErrCertificateExpired", err)
			}
		})
	}
}

func TestRealDebugDocumentsRejectedUnlessAllowed(t *testing.T) {
	n := 0
	for _, v := range realVectors(t) {
		at := time.Unix(v.meta.Verification.VerifyAtUnix, 0)
		_, err := attestation.Verify(v.doc, attestation.Policy{At: at})
		if v.meta.DebugMode {
			n++
			if !errors.Is(err, attestation.ErrDebug) {
				t.Errorf("%s: %v, want ErrDebug", v.name, err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", v.name, err)
		}
	}
	if n == 0 {
		t.Fatal("no debug document among the vectors")
	}
}

func TestRealDocumentsWrongPinsFail(t *testing.T) {
	for _, v := range realVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			at := time.Unix(v.meta.Verification.VerifyAtUnix, 0)
			for _, index := range []int{0, 1, 2, 8} {
				wrong := bytes.Repeat([]byte{0xab}, 48)
				_, err := attestation.Verify(v.doc, attestation.Policy{At: at, AllowDebug: true, PCRs: map[int][]byte{index: wrong}})
				if !errors.Is(err, attestation.ErrPCRMismatch) {
					t.Errorf("PCR%d pinned wrong: %v, want ErrPCRMismatch", index, err)
				}
			}
			// A pin on a PCR the document does not carry (16..31) fails too.
			_, err := attestation.Verify(v.doc, attestation.Policy{At: at, AllowDebug: true, PCRs: map[int][]byte{31: make([]byte, 48)}})
			if !errors.Is(err, attestation.ErrPCRMismatch) {
				t.Errorf("PCR31 pinned: %v, want ErrPCRMismatch", err)
			}
		})
	}
}

func TestRealDocumentsUnderAnotherRootFail(t *testing.T) {
	other := testPKI(t).Root
	for _, v := range realVectors(t) {
		at := time.Unix(v.meta.Verification.VerifyAtUnix, 0)
		_, err := attestation.Verify(v.doc, attestation.Policy{At: at, AllowDebug: true, Roots: []*x509.Certificate{other}})
		if !errors.Is(err, attestation.ErrUntrustedChain) {
			t.Errorf("%s: %v, want ErrUntrustedChain", v.name, err)
		}
	}
}

func TestCorruptFixtureFailsToParse(t *testing.T) {
	doc := readDoc(t, "nitro-validator-2026-01-03-corrupt-fixture.b64")
	_, err := attestation.Verify(doc, attestation.Policy{At: time.Unix(1767472867, 0)})
	if !errors.Is(err, attestation.ErrMalformed) {
		t.Fatalf("Verify: %v, want ErrMalformed", err)
	}
}

func TestIndefiniteLengthPayloadVerifies(t *testing.T) {
	doc := readDoc(t, "nitro-validator-2026-01-03-nondebug-indefmap.cbor")
	// The payload byte string's first byte is the map head.
	if !bytes.Contains(doc[:16], []byte{0xbf}) {
		t.Fatal("vector no longer has an indefinite-length payload map")
	}
	if _, err := attestation.Verify(doc, attestation.Policy{At: time.Unix(1767472867, 0)}); err != nil {
		t.Fatal(err)
	}
}

func TestTaggedRealDocumentVerifies(t *testing.T) {
	doc := readDoc(t, "qos-2022-07-06-nondebug.cbor")
	tagged := append([]byte{0xd2}, doc...)
	if _, err := attestation.Verify(tagged, attestation.Policy{At: time.Unix(1657117102, 0)}); err != nil {
		t.Fatal(err)
	}
}

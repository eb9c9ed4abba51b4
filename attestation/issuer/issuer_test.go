package issuer_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
)

// payloadOf is the payload byte string of a COSE_Sign1 document.
func payloadOf(t *testing.T, doc []byte) []byte {
	t.Helper()
	var msg []cbor.RawMessage
	if err := cbor.Unmarshal(doc, &msg); err != nil || len(msg) != 4 {
		t.Fatalf("COSE_Sign1: %v, %d items", err, len(msg))
	}
	var payload []byte
	if err := cbor.Unmarshal(msg[2], &payload); err != nil || len(payload) < 2 {
		t.Fatalf("payload: %v, %d bytes", err, len(payload))
	}
	return payload
}

// TestPayloadMapEncodingIsTheRealOne holds the issued payload map's head to
// the one of a real AWS document: by default the indefinite-length map of
// the newest vector (bf … ff), with DefinitePayload the definite map of
// nine (a9) of the older ones. attestation.Verify accepts both.
func TestPayloadMapEncodingIsTheRealOne(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	a, err := issuer.NewAuthority(now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pcrs := map[int][]byte{}
	for i := range 16 {
		pcrs[i] = make([]byte, 48)
		pcrs[i][0] = byte(i + 1)
	}
	nonce := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name     string
		opts     issuer.Options
		vector   string
		wantHead byte
	}{
		{"default_indefinite", issuer.Options{}, "nitro-validator-2026-01-03-nondebug-indefmap.cbor", 0xbf},
		{"definite_option", issuer.Options{DefinitePayload: true}, "qos-2022-07-06-nondebug.cbor", 0xa9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			real := payloadOf(t, testvectors.Read(t, "attestation", tc.vector))
			if real[0] != tc.wantHead {
				t.Fatalf("vector %s: payload head %x, want %x", tc.vector, real[0], tc.wantHead)
			}
			is, err := a.NewIssuer(now, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := is.Issue(issuer.Payload{Timestamp: now, PCRs: pcrs, Nonce: nonce})
			if err != nil {
				t.Fatal(err)
			}
			got := payloadOf(t, doc)
			if got[0] != real[0] {
				t.Fatalf("issued payload head %x, real document's %x", got[0], real[0])
			}
			if (real[len(real)-1] == 0xff) != (got[len(got)-1] == 0xff) {
				t.Fatalf("issued payload ends %x, real document's %x", got[len(got)-1], real[len(real)-1])
			}
			d, err := attestation.Verify(doc, attestation.Policy{
				At: now, Roots: []*x509.Certificate{a.Root}, Nonce: nonce, PCRs: map[int][]byte{0: pcrs[0]},
			})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if d.ModuleID != is.ModuleID {
				t.Fatalf("module id %q, want %q", d.ModuleID, is.ModuleID)
			}
		})
	}
}

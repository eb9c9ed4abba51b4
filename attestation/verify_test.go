package attestation_test

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
)

// t0 is the fixed time every simulated document in these tests is issued at.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testPKI(t testing.TB) *issuer.Authority {
	t.Helper()
	a, err := issuer.NewAuthority(t0.Add(-24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustAWSRoot(t *testing.T) *x509.Certificate {
	t.Helper()
	r, err := attestation.AWSRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pcrValue(b byte) []byte { return bytes.Repeat([]byte{b}, 48) }

// simPCRs are PCRs 0..15 of a production (non-debug) enclave.
func simPCRs() map[int][]byte {
	m := map[int][]byte{}
	for i := range 16 {
		m[i] = make([]byte, 48)
	}
	m[0], m[1], m[2] = pcrValue(0x10), pcrValue(0x11), pcrValue(0x12)
	return m
}

var (
	testNonce     = []byte("0123456789abcdef0123456789abcdef")
	testUserData  = []byte{0xa1, 0x61, 0x76, 0x01}
	testPublicKey = []byte("public key bytes")
)

// kv is one payload entry; payloads are crafted as ordered lists so that a
// test can drop, repeat or retype any field.
type kv struct {
	key   any
	value any
}

func encodeMap(t testing.TB, entries []kv) cbor.RawMessage {
	t.Helper()
	out := []byte{0xb8, byte(len(entries))}
	for _, e := range entries {
		k, err := cbor.Marshal(e.key)
		if err != nil {
			t.Fatal(err)
		}
		var v []byte
		if raw, ok := e.value.(cbor.RawMessage); ok {
			v = raw
		} else if v, err = cbor.Marshal(e.value); err != nil {
			t.Fatal(err)
		}
		out = append(append(out, k...), v...)
	}
	return out
}

func pcrMap(t testing.TB, pcrs map[int][]byte) cbor.RawMessage {
	t.Helper()
	b, err := issuer.EncodePCRs(pcrs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// standardEntries is the payload an NSM emits, as an editable list.
func standardEntries(t testing.TB, is *issuer.Issuer) []kv {
	return []kv{
		{"module_id", is.ModuleID},
		{"digest", "SHA384"},
		{"timestamp", uint64(t0.UnixMilli())},
		{"pcrs", pcrMap(t, simPCRs())},
		{"certificate", is.Leaf.Raw},
		{"cabundle", is.CABundle()},
		{"public_key", testPublicKey},
		{"user_data", testUserData},
		{"nonce", testNonce},
	}
}

func set(entries []kv, key string, value any) []kv {
	out := append([]kv(nil), entries...)
	for i := range out {
		if out[i].key == key {
			out[i].value = value
			return out
		}
	}
	return append(out, kv{key, value})
}

func drop(entries []kv, key string) []kv {
	var out []kv
	for _, e := range entries {
		if e.key != key {
			out = append(out, e)
		}
	}
	return out
}

func signed(t testing.TB, is *issuer.Issuer, protected []byte, entries []kv) []byte {
	t.Helper()
	doc, err := is.Sign(protected, encodeMap(t, entries))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func newIssuer(t testing.TB, a *issuer.Authority, opts issuer.Options) *issuer.Issuer {
	t.Helper()
	is, err := a.NewIssuer(t0, opts)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// flip returns a copy of doc with the byte at offset i inverted.
func flip(doc []byte, i int) []byte {
	out := bytes.Clone(doc)
	out[i] ^= 0x01
	return out
}

// offsetOf finds needle in doc; the tests use it to aim a tamper at one region.
func offsetOf(t *testing.T, doc, needle []byte) int {
	t.Helper()
	i := bytes.Index(doc, needle)
	if i < 0 {
		t.Fatal("region not found in document")
	}
	return i
}

func TestVerifySimulatedDocuments(t *testing.T) {
	a := testPKI(t)
	is := newIssuer(t, a, issuer.Options{})
	other := testPKI(t)
	otherIs := newIssuer(t, other, issuer.Options{ModuleID: is.ModuleID})
	good := signed(t, is, issuer.ProtectedES384, standardEntries(t, is))
	base := attestation.Policy{Roots: []*x509.Certificate{a.Root}, At: t0.Add(time.Second)}
	with := func(f func(*attestation.Policy)) attestation.Policy {
		p := base
		f(&p)
		return p
	}
	payloadAt := offsetOf(t, good, []byte(is.ModuleID))
	leafAt := offsetOf(t, good, is.Leaf.Raw)
	interAt := offsetOf(t, good, is.Intermediate.Raw)
	rootAt := offsetOf(t, good, a.Root.Raw)
	deep := append(bytes.Repeat([]byte{0x81}, 64), 0x00)

	std := standardEntries(t, is)
	tests := []struct {
		name   string
		doc    []byte
		policy attestation.Policy
		want   error
	}{
		{"valid", good, base, nil},
		{"valid_tagged", append([]byte{0xd2}, good...), base, nil},
		{"valid_with_pins_nonce_key_and_age", good, with(func(p *attestation.Policy) {
			p.PCRs = map[int][]byte{0: pcrValue(0x10), 1: pcrValue(0x11), 2: pcrValue(0x12), 15: make([]byte, 48)}
			p.Nonce, p.PublicKey, p.MaxAge = testNonce, testPublicKey, time.Minute
		}), nil},
		{"valid_absent_optional_fields", signed(t, is, issuer.ProtectedES384, drop(drop(drop(std, "nonce"), "user_data"), "public_key")), base, nil},
		{"valid_null_optional_fields", signed(t, is, issuer.ProtectedES384, set(set(std, "nonce", nil), "user_data", nil)), base, nil},
		{"carried_root_ignored", signed(t, is, issuer.ProtectedES384, set(std, "cabundle", [][]byte{other.Root.Raw, is.Intermediate.Raw})), base, nil},
		{"bad_carried_root_tampered_breaks_signature", flip(good, rootAt+len(a.Root.Raw)-1), base, attestation.ErrSignature},

		{"bad_protected_header_alg_tampered", func() []byte { d := bytes.Clone(good); d[offsetOf(t, d, issuer.ProtectedES384)+3] = 0x23; return d }(), base, attestation.ErrAlgorithm},
		{"bad_protected_header_extra_param", signed(t, is, []byte{0xa2, 0x01, 0x38, 0x22, 0x04, 0x41, 0x00}, std), base, attestation.ErrUnknownField},
		{"bad_protected_header_empty", signed(t, is, []byte{}, std), base, attestation.ErrAlgorithm},
		{"bad_alg_es256", signed(t, is, []byte{0xa1, 0x01, 0x26}, std), base, attestation.ErrAlgorithm},
		{"bad_alg_as_text", signed(t, is, []byte{0xa1, 0x01, 0x65, 'E', 'S', '3', '8', '4'}, std), base, attestation.ErrAlgorithm},
		{"bad_payload_tampered", flip(good, payloadAt), base, attestation.ErrSignature},
		{"bad_signature_tampered", flip(good, len(good)-1), base, attestation.ErrSignature},
		{"bad_signature_length", func() []byte {
			d := bytes.Clone(good[:len(good)-96-2])
			return append(append(d, 0x58, 95), good[len(good)-95:]...)
		}(), base, attestation.ErrSignature},
		{"bad_leaf_certificate_tampered", flip(good, leafAt+len(is.Leaf.Raw)-1), base, attestation.ErrUntrustedChain},
		{"bad_leaf_certificate_garbled", flip(good, leafAt+1), base, attestation.ErrCertificate},
		{"bad_intermediate_tampered", flip(good, interAt+len(is.Intermediate.Raw)-1), base, attestation.ErrUntrustedChain},
		{"bad_leaf_curve_p256", func() []byte {
			p256 := newIssuer(t, a, issuer.Options{LeafCurve: elliptic.P256()})
			return signed(t, p256, issuer.ProtectedES384, standardEntries(t, p256))
		}(), base, attestation.ErrLeafProfile},
		{"bad_chain_to_other_root", signed(t, otherIs, issuer.ProtectedES384, standardEntries(t, otherIs)), base, attestation.ErrUntrustedChain},
		{"bad_chain_other_root_carried_in_cabundle", signed(t, otherIs, issuer.ProtectedES384, set(standardEntries(t, otherIs), "cabundle", [][]byte{a.Root.Raw, otherIs.Intermediate.Raw})), base, attestation.ErrUntrustedChain},
		{"bad_chain_aws_root_by_default", good, with(func(p *attestation.Policy) { p.Roots = nil }), attestation.ErrUntrustedChain},
		{"bad_leaf_expired", good, with(func(p *attestation.Policy) { p.At = is.Leaf.NotAfter.Add(time.Second) }), attestation.ErrCertificateExpired},
		{"bad_leaf_not_yet_valid", good, with(func(p *attestation.Policy) { p.At = is.Leaf.NotBefore.Add(-time.Second) }), attestation.ErrCertificateNotYetValid},
		{"bad_intermediate_expired", func() []byte {
			short := newIssuer(t, a, issuer.Options{IntermediateNotBefore: t0.Add(-2 * time.Hour), IntermediateLifetime: time.Hour})
			return signed(t, short, issuer.ProtectedES384, standardEntries(t, short))
		}(), base, attestation.ErrCertificateExpired},
		{"bad_missing_module_id", signed(t, is, issuer.ProtectedES384, drop(std, "module_id")), base, attestation.ErrMissingField},
		{"bad_missing_digest", signed(t, is, issuer.ProtectedES384, drop(std, "digest")), base, attestation.ErrMissingField},
		{"bad_missing_timestamp", signed(t, is, issuer.ProtectedES384, drop(std, "timestamp")), base, attestation.ErrMissingField},
		{"bad_missing_pcrs", signed(t, is, issuer.ProtectedES384, drop(std, "pcrs")), base, attestation.ErrMissingField},
		{"bad_missing_certificate", signed(t, is, issuer.ProtectedES384, drop(std, "certificate")), base, attestation.ErrMissingField},
		{"bad_null_cabundle", signed(t, is, issuer.ProtectedES384, set(std, "cabundle", nil)), base, attestation.ErrMissingField},
		{"bad_oversized_user_data", signed(t, is, issuer.ProtectedES384, set(std, "user_data", make([]byte, 513))), base, attestation.ErrFieldBounds},
		{"bad_oversized_nonce", signed(t, is, issuer.ProtectedES384, set(std, "nonce", make([]byte, 513))), base, attestation.ErrFieldBounds},
		{"bad_oversized_public_key", signed(t, is, issuer.ProtectedES384, set(std, "public_key", make([]byte, 1025))), base, attestation.ErrFieldBounds},
		{"bad_empty_public_key", signed(t, is, issuer.ProtectedES384, set(std, "public_key", []byte{})), base, attestation.ErrFieldBounds},
		{"bad_empty_cabundle", signed(t, is, issuer.ProtectedES384, set(std, "cabundle", [][]byte{})), base, attestation.ErrFieldBounds},
		{"bad_cabundle_too_long", signed(t, is, issuer.ProtectedES384, set(std, "cabundle", [][]byte{a.Root.Raw, a.Root.Raw, a.Root.Raw, a.Root.Raw, a.Root.Raw, a.Root.Raw, a.Root.Raw, a.Root.Raw, is.Intermediate.Raw})), base, attestation.ErrFieldBounds},
		{"bad_zero_timestamp", signed(t, is, issuer.ProtectedES384, set(std, "timestamp", 0)), base, attestation.ErrFieldBounds},
		{"bad_pcr_length_32", signed(t, is, issuer.ProtectedES384, set(std, "pcrs", pcrMap(t, map[int][]byte{0: pcrValue(1), 1: pcrValue(1), 2: make([]byte, 32)}))), base, attestation.ErrPCRLength},
		{"bad_pcr_length_64", signed(t, is, issuer.ProtectedES384, set(std, "pcrs", pcrMap(t, map[int][]byte{0: make([]byte, 64)}))), base, attestation.ErrPCRLength},
		{"bad_pcr_index_32", signed(t, is, issuer.ProtectedES384, set(std, "pcrs", pcrMap(t, map[int][]byte{0: pcrValue(1), 32: pcrValue(1)}))), base, attestation.ErrPCRIndex},
		{"bad_pcr_index_negative", signed(t, is, issuer.ProtectedES384, set(std, "pcrs", encodeMap(t, []kv{{-1, pcrValue(1)}}))), base, attestation.ErrPCRIndex},
		{"bad_empty_pcrs", signed(t, is, issuer.ProtectedES384, set(std, "pcrs", map[int][]byte{})), base, attestation.ErrFieldBounds},
		{"bad_digest_sha256", signed(t, is, issuer.ProtectedES384, set(std, "digest", "SHA256")), base, attestation.ErrDigest},
		{"bad_duplicate_payload_key", signed(t, is, issuer.ProtectedES384, append(std, kv{"module_id", "i-evil"})), base, attestation.ErrDuplicateKey},
		{"bad_duplicate_pcr_index", signed(t, is, issuer.ProtectedES384, set(std, "pcrs", encodeMap(t, []kv{{0, pcrValue(1)}, {0, pcrValue(2)}}))), base, attestation.ErrDuplicateKey},
		{"bad_unknown_payload_field", signed(t, is, issuer.ProtectedES384, append(std, kv{"extra", 1})), base, attestation.ErrUnknownField},
		{"bad_integer_payload_key", signed(t, is, issuer.ProtectedES384, append(std, kv{7, 1})), base, attestation.ErrUnknownField},
		{"bad_user_data_as_text", signed(t, is, issuer.ProtectedES384, set(std, "user_data", "text")), base, attestation.ErrMalformed},
		{"bad_timestamp_as_float", signed(t, is, issuer.ProtectedES384, set(std, "timestamp", 1.5)), base, attestation.ErrMalformed},
		{"bad_payload_not_a_map", func() []byte { d, _ := is.Sign(issuer.ProtectedES384, []byte{0x80}); return d }(), base, attestation.ErrMalformed},
		{"bad_trailing_bytes", append(bytes.Clone(good), 0x00), base, attestation.ErrTrailingData},
		{"bad_unprotected_header_not_empty", func() []byte {
			d := bytes.Clone(good)
			i := offsetOf(t, d, []byte{0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0}) + 5
			return append(append(d[:i:i], 0xa1, 0x04, 0x41, 0x00), good[i+1:]...)
		}(), base, attestation.ErrUnknownField},
		{"bad_cose_array_of_three", append([]byte{0x83}, good[1:len(good)-98]...), base, attestation.ErrMalformed},
		{"bad_other_tag", append([]byte{0xd1}, good...), base, attestation.ErrMalformed},
		{"bad_nesting_bomb", deep, base, attestation.ErrMalformed},
		{"bad_empty_document", nil, base, attestation.ErrMalformed},
		{"bad_too_large", make([]byte, attestation.MaxDocumentSize+1), base, attestation.ErrTooLarge},
		{"bad_debug_document", signed(t, is, issuer.ProtectedES384, set(std, "pcrs", pcrMap(t, map[int][]byte{0: make([]byte, 48), 1: make([]byte, 48), 2: make([]byte, 48)}))), base, attestation.ErrDebug},
		{"bad_pcr_pin", good, with(func(p *attestation.Policy) { p.PCRs = map[int][]byte{2: pcrValue(0x13)} }), attestation.ErrPCRMismatch},
		{"bad_nonce_mismatch", good, with(func(p *attestation.Policy) { p.Nonce = []byte("another nonce, just as long.....") }), attestation.ErrNonceMismatch},
		{"bad_nonce_absent", signed(t, is, issuer.ProtectedES384, set(std, "nonce", nil)), with(func(p *attestation.Policy) { p.Nonce = testNonce }), attestation.ErrNonceMismatch},
		{"bad_public_key_mismatch", good, with(func(p *attestation.Policy) { p.PublicKey = []byte("other key") }), attestation.ErrPublicKeyMismatch},
		{"bad_stale_document", good, with(func(p *attestation.Policy) { p.At = t0.Add(10 * time.Minute); p.MaxAge = 5 * time.Minute }), attestation.ErrStale},
		{"bad_future_timestamp", signed(t, is, issuer.ProtectedES384, set(std, "timestamp", uint64(t0.Add(30*time.Minute).UnixMilli()))), base, attestation.ErrFutureTimestamp},
		{"bad_timestamp_before_leaf", signed(t, is, issuer.ProtectedES384, set(std, "timestamp", uint64(is.Leaf.NotBefore.Add(-time.Hour).UnixMilli()))), base, attestation.ErrTimestamp},
		{"bad_policy_no_clock", good, with(func(p *attestation.Policy) { p.At = time.Time{} }), attestation.ErrPolicy},
		{"bad_policy_pin_length", good, with(func(p *attestation.Policy) { p.PCRs = map[int][]byte{0: {1}} }), attestation.ErrPolicy},
		{"bad_policy_pin_index", good, with(func(p *attestation.Policy) { p.PCRs = map[int][]byte{32: pcrValue(0)} }), attestation.ErrPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := attestation.Verify(tt.doc, tt.policy)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if doc == nil || doc.ModuleID != is.ModuleID {
					t.Fatalf("Verify returned %+v", doc)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if doc != nil {
				t.Fatal("Verify returned a document together with an error")
			}
			if attestation.Rule(err) == "" {
				t.Fatalf("Rule(%v) is empty", err)
			}
		})
	}
}

func TestDebugDocumentAllowedExplicitly(t *testing.T) {
	a := testPKI(t)
	is := newIssuer(t, a, issuer.Options{})
	zero := map[int][]byte{}
	for i := range 16 {
		zero[i] = make([]byte, 48)
	}
	doc, err := is.Issue(issuer.Payload{Timestamp: t0, PCRs: zero})
	if err != nil {
		t.Fatal(err)
	}
	d, err := attestation.Verify(doc, attestation.Policy{Roots: []*x509.Certificate{a.Root}, At: t0, AllowDebug: true})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Debug {
		t.Fatal("Debug = false for all-zero PCR0..2")
	}
}

func fmtSscan(s string, i *int) (int, error) {
	v, err := strconv.Atoi(s)
	*i = v
	return 1, err
}

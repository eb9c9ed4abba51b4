package custody_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// forge encrypts a keyring of the attacker's choosing (secret as epoch 1,
// generation gen) to x25519, in the base-mode HPKE and with the info string
// of the receiver's exchange (nR, nS): what anyone who saw the receiver's
// offer can make.
func forge(t testing.TB, x25519, nR, nS, secret []byte, gen uint64) []byte {
	t.Helper()
	pub, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keyring.NewSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	plain := keyring.AppendSecrets(binary.BigEndian.AppendUint64(nil, gen), []*keyring.Secret{s})
	info := append([]byte("nitro-signer peer-copy v1\x00"+signerID+"\x00"), nR...)
	ct, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), append(info, nS...), plain)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func signWith(t testing.TB, k *ecdsa.PrivateKey, nR, nS, ct []byte) []byte {
	t.Helper()
	d := sha256.Sum256(custody.PeerSigned(signerID, nR, nS, ct))
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func nonce32() []byte {
	n := make([]byte, 32)
	rand.Read(n)
	return n
}

// exchange is one receiver's open exchange: the sender's nonce it answered
// (nS) and its own (nR), as an attacker sees them.
type exchange struct{ nS, nR []byte }

func offerFrom(t testing.TB, r *enclave, nS []byte) exchange {
	t.Helper()
	var offer api.PeerOfferResponse
	if err := r.call(t, api.PeerOffer.Route, api.PeerOfferRequest{Challenge: nS}, &offer); err != nil {
		t.Fatal(err)
	}
	return exchange{nS: nS, nR: offer.Nonce}
}

// genuineExport runs a genuine sender's export for r's exchange.
func genuineExport(t testing.TB, s, r *enclave) (exchange, api.PeerExportResponse) {
	t.Helper()
	var ch api.PeerChallengeResponse
	if err := s.call(t, api.PeerChallenge.Route, struct{}{}, &ch); err != nil {
		t.Fatal(err)
	}
	var offer api.PeerOfferResponse
	if err := r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch), &offer); err != nil {
		t.Fatal(err)
	}
	var exp api.PeerExportResponse
	if err := s.call(t, api.PeerExport.Route, api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce}, &exp); err != nil {
		t.Fatal(err)
	}
	return exchange{nS: ch.Challenge, nR: offer.Nonce}, exp
}

// A genuine document over the receiver's nonce proves that some enclave of
// the image attested over it, not that it sent the keyring: the receiver
// takes only a keyring signed by the response key of the document that
// came with it, from a peer other than itself, running its configuration,
// and never into an empty keyring over sealed keyrings.
func TestPeerImportTakesOnlyTheAttestedSendersKeyring(t *testing.T) {
	w := newWorld(t)
	s := imported(t, w)
	s.call(t, api.RotateKeys.Route, struct{}{}, nil)
	chosen := secretBytes(0x66)
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), nil)
	otherConfig := sha256.Sum256([]byte("another configuration"))

	for _, tc := range []struct {
		name string
		// receiver builds the receiver; nil is a fresh one.
		receiver func(t *testing.T) *enclave
		// build returns the peer-import params for r.
		build func(t *testing.T, r *enclave) api.PeerImportRequest
		rule  error
		code  api.Code
	}{
		{name: "bad_document_is_the_receivers_own", rule: custody.ErrPeerIsSelf, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				x := offerFrom(t, r, nonce32())
				doc, _ := r.attest(x.nR) // from r's attestation route
				return api.PeerImportRequest{Nonce: x.nR, Document: doc, Keyring: forge(t, r.x.PublicKey().Bytes(), x.nR, x.nS, chosen, 1)}
			}},
		{name: "bad_document_is_the_receivers_own_signed_by_it", rule: custody.ErrPeerIsSelf, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				// Even a signature by the receiver's own key (which it never
				// makes for itself) does not make its document a peer's.
				x := offerFrom(t, r, nonce32())
				doc, _ := r.attest(x.nR)
				ct := forge(t, r.x.PublicKey().Bytes(), x.nR, x.nS, chosen, 1)
				return api.PeerImportRequest{Nonce: x.nR, Document: doc, Keyring: ct, Signature: signWith(t, r.sign, x.nR, x.nS, ct)}
			}},
		{name: "bad_unsigned", rule: custody.ErrPeerUnsigned, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				x := offerFrom(t, r, nonce32())
				doc, _ := s.attest(x.nR) // from the sender's attestation route
				return api.PeerImportRequest{Nonce: x.nR, Document: doc, Keyring: forge(t, r.x.PublicKey().Bytes(), x.nR, x.nS, chosen, 1)}
			}},
		{name: "bad_signed_by_another_key", rule: custody.ErrPeerUnsigned, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				x := offerFrom(t, r, nonce32())
				doc, _ := s.attest(x.nR)
				ct := forge(t, r.x.PublicKey().Bytes(), x.nR, x.nS, chosen, 1)
				return api.PeerImportRequest{Nonce: x.nR, Document: doc, Keyring: ct, Signature: signWith(t, attacker, x.nR, x.nS, ct)}
			}},
		{name: "bad_signature_over_another_ciphertext", rule: custody.ErrPeerUnsigned, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				// The sender's genuine signature, with the attacker's
				// ciphertext in place of the sender's.
				x, exp := genuineExport(t, s, r)
				ct := forge(t, r.x.PublicKey().Bytes(), x.nR, x.nS, chosen, 9)
				return api.PeerImportRequest{Nonce: x.nR, Document: exp.Document, Keyring: ct, Signature: exp.Signature}
			}},
		{name: "bad_signature_from_another_exchange", rule: custody.ErrPeerUnsigned, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				// A genuine export for one exchange, delivered for another
				// with a fresh document of the sender over its nonce.
				_, exp := genuineExport(t, s, r)
				x := offerFrom(t, r, nonce32())
				doc, _ := s.attest(x.nR)
				return api.PeerImportRequest{Nonce: x.nR, Document: doc, Keyring: exp.Keyring, Signature: exp.Signature}
			}},
		{name: "bad_signature_malformed", rule: custody.ErrPeerUnsigned, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				x, exp := genuineExport(t, s, r)
				sig := append([]byte{}, exp.Signature...)
				sig[len(sig)-1] ^= 1
				return api.PeerImportRequest{Nonce: x.nR, Document: exp.Document, Keyring: exp.Keyring, Signature: sig}
			}},
		{name: "bad_signature_oversized", rule: custody.ErrPeerUnsigned, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				x, exp := genuineExport(t, s, r)
				return api.PeerImportRequest{Nonce: x.nR, Document: exp.Document, Keyring: exp.Keyring, Signature: append(exp.Signature, make([]byte, 64)...)}
			}},
		{name: "bad_other_config", rule: custody.ErrPeerConfig, code: api.CodePeerRefused,
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				// A sender that judges peers by r's configuration but
				// attests another: only the receiver's own check stops it.
				liar := w.start(t, opts{attestConfig: otherConfig[:]})
				if err := liar.importSecret(t, secretBytes(9)); err != nil {
					t.Fatal(err)
				}
				x, exp := genuineExport(t, liar, r)
				return api.PeerImportRequest{Nonce: x.nR, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature}
			}},
		{name: "bad_empty_keyring_over_sealed_keyrings", rule: custody.ErrSecondLineage, code: api.CodeKeyringNotEmpty,
			receiver: func(t *testing.T) *enclave {
				st := newMemStore()
				st.blobs[1] = []byte("a sealed keyring this enclave cannot open")
				return w.start(t, opts{store: st})
			},
			build: func(t *testing.T, r *enclave) api.PeerImportRequest {
				x, exp := genuineExport(t, s, r)
				return api.PeerImportRequest{Nonce: x.nR, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.start(t, opts{})
			if tc.receiver != nil {
				r = tc.receiver(t)
			}
			stored := r.store.count()
			err := r.call(t, api.PeerImport.Route, tc.build(t, r), nil)
			if !errors.Is(err, tc.rule) || code(err) != tc.code {
				t.Fatalf("peer-import: %v, want %v (%s)", err, tc.rule, tc.code)
			}
			if r.keys.Current() != 0 || r.store.count() != stored {
				t.Fatalf("a refused peer-import changed the receiver: epoch %d, %d stored", r.keys.Current(), r.store.count())
			}
		})
	}

	// The control: the same receivers take a genuine copy.
	r := w.start(t, opts{})
	if res, err := copyKeyring(t, s, r); err != nil || res.Epoch != 2 {
		t.Fatalf("genuine copy: %+v, %v", res, err)
	}
	if address(t, r.keys, 1) != address(t, s.keys, 1) {
		t.Fatal("the copy derives another address")
	}
}

// The sender holds the receiver to the same rules before it encrypts
// anything: not itself, the same configuration.
func TestPeerExportRefusesSelfAndOtherConfig(t *testing.T) {
	w := newWorld(t)
	s := imported(t, w)
	other := sha256.Sum256([]byte("another configuration"))
	for _, tc := range []struct {
		name     string
		receiver func(t *testing.T) *enclave
		rule     error
	}{
		{"bad_receiver_is_the_sender", func(*testing.T) *enclave { return s }, custody.ErrPeerIsSelf},
		{"bad_receiver_runs_another_config", func(t *testing.T) *enclave { return w.start(t, opts{config: other[:]}) }, custody.ErrPeerConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.receiver(t)
			var ch api.PeerChallengeResponse
			if err := s.call(t, api.PeerChallenge.Route, struct{}{}, &ch); err != nil {
				t.Fatal(err)
			}
			var offer api.PeerOfferResponse
			if err := r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch), &offer); err != nil {
				t.Fatal(err)
			}
			var exp api.PeerExportResponse
			err := s.call(t, api.PeerExport.Route, api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce}, &exp)
			if !errors.Is(err, tc.rule) || code(err) != api.CodePeerRefused || len(exp.Keyring) != 0 {
				t.Fatalf("peer-export: %v, want %v", err, tc.rule)
			}
			if !strings.Contains(err.Error(), "peer") {
				t.Fatalf("refusal does not say what it refused: %v", err)
			}
		})
	}
}

// FuzzPeerImport hands a receiver's open exchange a document (the
// sender's genuine one over the receiver's nonce, or arbitrary bytes), a
// keyring and a signature of the fuzzer's choosing: without the sender's
// signature over exactly that keyring, every call is a typed refusal that
// leaves the receiver as it was.
func FuzzPeerImport(f *testing.F) {
	w := newWorld(f)
	s := w.start(f, opts{})
	if err := s.importSecret(f, secretBytes(4)); err != nil {
		f.Fatal(err)
	}
	r := w.start(f, opts{})
	_, exp := genuineExport(f, s, r)
	f.Add(false, exp.Document, exp.Keyring, exp.Signature[:len(exp.Signature)-1])
	f.Add(true, []byte{}, exp.Keyring, exp.Signature)
	f.Add(true, exp.Document, []byte("keyring"), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, genuineDoc bool, doc, ct, sig []byte) {
		var offer api.PeerOfferResponse
		if err := r.call(t, api.PeerOffer.Route, api.PeerOfferRequest{Challenge: nonce32()}, &offer); err != nil {
			t.Fatal(err)
		}
		if genuineDoc {
			doc, _ = s.attest(offer.Nonce)
		}
		err := r.call(t, api.PeerImport.Route, api.PeerImportRequest{Nonce: offer.Nonce, Document: doc, Keyring: ct, Signature: sig}, nil)
		var ee *api.Error
		if err == nil || !errors.As(err, &ee) {
			t.Fatalf("peer-import of the fuzzer's keyring: %v", err)
		}
		if r.keys.Current() != 0 || r.store.count() != 0 {
			t.Fatal("a refused peer-import changed the receiver")
		}
	})
}

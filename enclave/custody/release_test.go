package custody_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/custody"
)

// release is an enclave image of its own: a binary the simulator measures,
// and the measurement a configuration's peers name it by.
type release struct {
	binary string
	m      attestation.Measurement
}

func (w *world) release(t testing.TB, name string) release {
	t.Helper()
	bin := filepath.Join(w.dir, name+".bin")
	if err := os.WriteFile(bin, []byte("enclave image "+name), 0o644); err != nil {
		t.Fatal(err)
	}
	pcrs := measureImage(t, bin)
	return release{binary: bin, m: attestation.Measurement{Name: name, PCRs: map[int][]byte{0: pcrs[0], 1: pcrs[1], 2: pcrs[2]}}}
}

// window is the release's measurement allowed from notBefore until
// notAfter (zero: open).
func (r release) window(notBefore, notAfter time.Time) attestation.Measurement {
	m := r.m
	m.NotBefore, m.NotAfter = notBefore, notAfter
	return m
}

func configHash(name string) []byte {
	h := sha256.Sum256([]byte("the configuration of " + name))
	return h[:]
}

// The attacker is a hostile parent (or two) relaying the four peer calls:
// it can start any enclave image it has, and hand either side any document
// it obtained. A sender encrypts the keyring only to a receiver of its own
// image or of a release its configuration names as a peer, inside that
// release's window and never in debug mode; a receiver takes a keyring only
// from such a sender. Each refusal names the attestation rule it broke.
func TestPeerCopyAcrossReleasesRefuses(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.release(t, "A"), w.release(t, "B"), w.release(t, "C")
	debug := attestation.Measurement{Name: "zeros", PCRs: map[int][]byte{0: make([]byte, 48), 1: make([]byte, 48), 2: make([]byte, 48)}}
	now := w.now
	for _, tc := range []struct {
		name     string
		sender   opts
		receiver opts
		stage    string // the call that refuses: export (the sender) or import (the receiver)
		rule     error
	}{
		{name: "bad_receiver_of_an_unlisted_release", stage: "export", rule: attestation.ErrPCRMismatch,
			sender:   opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{b.m}},
			receiver: opts{binary: c.binary, config: configHash("C"), peers: []attestation.Measurement{a.m}}},
		{name: "bad_sender_of_an_unlisted_release", stage: "import", rule: attestation.ErrPCRMismatch,
			// C accepts B, but B accepts only A: B alone stops it.
			sender:   opts{binary: c.binary, config: configHash("C"), peers: []attestation.Measurement{b.m}},
			receiver: opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m}}},
		{name: "bad_receiver_of_an_expired_release", stage: "export", rule: attestation.ErrReleaseExpired,
			sender:   opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{b.window(now.Add(-time.Hour), now.Add(-time.Second))}},
			receiver: opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m}}},
		{name: "bad_sender_of_an_expired_release", stage: "import", rule: attestation.ErrReleaseExpired,
			sender:   opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{b.m}},
			receiver: opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.window(time.Time{}, now)}}},
		{name: "bad_receiver_of_a_release_not_yet_valid", stage: "export", rule: attestation.ErrReleaseNotYetValid,
			sender:   opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{b.window(now.Add(time.Hour), time.Time{})}},
			receiver: opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m}}},
		{name: "bad_debug_receiver_even_if_listed", stage: "export", rule: attestation.ErrPolicy,
			// A configuration cannot list zeros (ParseReleases refuses
			// it); a list built in code that did is itself refused as a
			// policy, before any document is judged.
			sender:   opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{b.m, debug}},
			receiver: opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m}, debug: true}},
		{name: "bad_debug_sender", stage: "import", rule: attestation.ErrDebug,
			// The debug sender judges its receiver by its own (zero) PCRs
			// and refuses outright, so the attacker relays the document of
			// one debug enclave with a keyring it forged: the document is
			// refused before anything is opened.
			sender:   opts{binary: a.binary, config: configHash("A"), debug: true},
			receiver: opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m}}},
		{name: "bad_debug_sender_listed", stage: "import", rule: attestation.ErrPolicy,
			sender:   opts{binary: a.binary, config: configHash("A"), debug: true},
			receiver: opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m, debug}}},
		{name: "bad_same_image_other_config_even_if_listed", stage: "export", rule: custody.ErrPeerConfig,
			// A lists its own release among its peers (the deployment's
			// whole manifest): a receiver of A's image is still held to
			// A's configuration.
			sender:   opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{a.m, b.m}},
			receiver: opts{binary: a.binary, config: configHash("other"), peers: []attestation.Measurement{b.m}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := w.start(t, tc.sender), w.start(t, tc.receiver)
			if err := s.importSecret(t, secretBytes(7)); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.sender.debug {
				err = relayDebugSender(t, s, r)
			} else {
				_, err = copyKeyring(t, s, r)
			}
			if !errors.Is(err, tc.rule) || code(err) != api.CodePeerRefused || !strings.HasPrefix(err.Error(), tc.stage+":") {
				t.Fatalf("copy: %v, want %s refused by %v", err, tc.stage, tc.rule)
			}
			if rule := attestation.Rule(tc.rule); rule != "" && !strings.Contains(err.Error(), rule) {
				t.Fatalf("the refusal does not name its rule %s: %v", rule, err)
			}
			if r.keys.Current() != 0 || r.store.count() != 0 {
				t.Fatalf("a refused copy changed the receiver: epoch %d, %d stored", r.keys.Current(), r.store.count())
			}
		})
	}
}

// relayDebugSender hands r, for its open exchange, a debug-mode enclave's
// document over r's nonce with a keyring forged to r and signed by the
// debug enclave's response key: everything a genuine export would carry.
func relayDebugSender(t *testing.T, s, r *enclave) error {
	t.Helper()
	x := offerFrom(t, r, nonce32())
	doc, err := s.attest(x.nR)
	if err != nil {
		t.Fatal(err)
	}
	ct := forge(t, r.x.PublicKey().Bytes(), x.nR, x.nS, secretBytes(7), 1)
	err = r.call(t, api.PeerImport.Route, api.PeerImportRequest{Nonce: x.nR, Document: doc, Keyring: ct, Signature: signWith(t, s.sign, x.nR, x.nS, ct)}, nil)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// The control: A names B and B names A, each with its own configuration;
// the keyring goes from A to B, and later back, and both answer alike.
// A release stops being a peer at its not_after.
func TestPeerCopyAcrossReleases(t *testing.T) {
	w := newWorld(t)
	a, b := w.release(t, "A"), w.release(t, "B")
	until := w.now.Add(time.Hour)
	s := w.start(t, opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{b.window(time.Time{}, until)}})
	r := w.start(t, opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m}})
	if err := s.importSecret(t, secretBytes(8)); err != nil {
		t.Fatal(err)
	}
	s.call(t, api.RotateKeys.Route, struct{}{}, nil)
	res, err := copyKeyring(t, s, r)
	if err != nil || res.Epoch != 2 || res.Generation != 2 || r.store.count() != 1 {
		t.Fatalf("copy from A to B: %+v, %v (%d stored)", res, err, r.store.count())
	}
	for ep := uint32(1); ep <= 2; ep++ {
		if address(t, r.keys, ep) != address(t, s.keys, ep) {
			t.Fatalf("epoch %d derives another address on B", ep)
		}
	}
	// B rotates; A takes the new epoch from B, a sender it names.
	if err := r.call(t, api.RotateKeys.Route, struct{}{}, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := copyKeyring(t, r, s); err != nil || res.Epoch != 3 {
		t.Fatalf("copy from B back to A: %+v, %v", res, err)
	}
	if address(t, s.keys, 3) != address(t, r.keys, 3) {
		t.Fatal("epoch 3 differs after the copy back")
	}
	// Past B's not_after, A neither sends to B nor takes from it.
	w.now = until
	r.call(t, api.RotateKeys.Route, struct{}{}, nil)
	if _, err := copyKeyring(t, r, s); !errors.Is(err, attestation.ErrReleaseExpired) || !strings.HasPrefix(err.Error(), "import:") {
		t.Fatalf("copy from B after its not_after: %v", err)
	}
	if s.keys.Current() != 3 {
		t.Fatalf("A took epoch %d from an expired release", s.keys.Current())
	}
}

// Replays between releases: every nonce is single use, a document over an
// earlier exchange's nonce does not answer a new one, and a challenge
// expires.
func TestPeerCopyAcrossReleasesRefusesReplay(t *testing.T) {
	w := newWorld(t)
	a, b := w.release(t, "A"), w.release(t, "B")
	s := w.start(t, opts{binary: a.binary, config: configHash("A"), peers: []attestation.Measurement{b.m}})
	r := w.start(t, opts{binary: b.binary, config: configHash("B"), peers: []attestation.Measurement{a.m}})
	if err := s.importSecret(t, secretBytes(8)); err != nil {
		t.Fatal(err)
	}
	var ch api.PeerChallengeResponse
	s.call(t, api.PeerChallenge.Route, struct{}{}, &ch)
	var offer api.PeerOfferResponse
	r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch), &offer)
	exportReq := api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce}
	var exp api.PeerExportResponse
	if err := s.call(t, api.PeerExport.Route, exportReq, &exp); err != nil {
		t.Fatal(err)
	}
	t.Run("bad_replayed_export", func(t *testing.T) {
		if err := s.call(t, api.PeerExport.Route, exportReq, nil); code(err) != api.CodeReplayed {
			t.Fatalf("replayed export: %v", err)
		}
	})
	t.Run("bad_replayed_offer", func(t *testing.T) {
		// B's offer of the first exchange, relayed for a new challenge of A.
		var ch2 api.PeerChallengeResponse
		s.call(t, api.PeerChallenge.Route, struct{}{}, &ch2)
		var offer2 api.PeerOfferResponse
		r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch2), &offer2)
		err := s.call(t, api.PeerExport.Route, api.PeerExportRequest{Challenge: ch2.Challenge, Document: offer.Document, Nonce: offer2.Nonce}, nil)
		if !errors.Is(err, attestation.ErrNonceMismatch) || code(err) != api.CodePeerRefused {
			t.Fatalf("export for a replayed offer: %v", err)
		}
	})
	importReq := api.PeerImportRequest{Nonce: offer.Nonce, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature}
	if err := r.call(t, api.PeerImport.Route, importReq, nil); err != nil {
		t.Fatal(err)
	}
	t.Run("bad_replayed_import", func(t *testing.T) {
		if err := r.call(t, api.PeerImport.Route, importReq, nil); code(err) != api.CodeReplayed {
			t.Fatalf("replayed import: %v", err)
		}
	})
	t.Run("bad_expired_challenge", func(t *testing.T) {
		var ch3 api.PeerChallengeResponse
		s.call(t, api.PeerChallenge.Route, struct{}{}, &ch3)
		w.now = w.now.Add(3 * time.Minute)
		var offer3 api.PeerOfferResponse
		r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch3), &offer3)
		err := s.call(t, api.PeerExport.Route, api.PeerExportRequest{Challenge: ch3.Challenge, Document: offer3.Document, Nonce: offer3.Nonce}, nil)
		if code(err) != api.CodeReplayed {
			t.Fatalf("export over an expired challenge: %v", err)
		}
	})
}

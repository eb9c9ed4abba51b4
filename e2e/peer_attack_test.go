package e2e

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// The attacker of these tests is a hostile parent with one admin
// certificate: it may call keys/peer-request and keys/peer-import on the
// receiver, and fetch attestation documents over any nonce from any
// enclave's attestation route. keys/import is refused on the receiver
// because its store holds sealed keyrings; a peer copy must not become the
// way around that refusal, nor a way to plant a keyring the attacker knows.

// newEmptyOverSealedEnv starts a sealed stack whose store holds a sealed
// keyring that does not open (as after a lost sealing key, or KMS refusing
// for good): its keyring is empty, and keys/import is refused.
func newEmptyOverSealedEnv(t *testing.T, dir, name string) *env {
	t.Helper()
	state := filepath.Join(dir, name+"state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "keyring-00000000000000000001.sealed"), []byte("a sealed keyring this enclave cannot open"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newSealedEnv(t, dir, name, "--no-keys")
	e.readiness(func(ready bool, reason string) bool { return !ready && strings.Contains(reason, "unsealing failed") }, 10*time.Second)
	return e
}

// attestationOver fetches a genuine document from the stack's public
// attestation route over nonce, as any caller can.
func (e *env) attestationOver(nonce []byte) []byte {
	e.t.Helper()
	resp, err := e.httpClient("broker").Get(e.parent + "/v1/attestation?nonce=" + hex.EncodeToString(nonce))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("attestation over a chosen nonce: %d %v %q", resp.StatusCode, err, b)
	}
	return b
}

// forgedKeyring encrypts a keyring of the attacker's choosing (secret as
// epoch 1) to the receiver's attested X25519 key, in the base-mode HPKE a
// genuine sender uses, with the info string of the receiver's exchange.
func forgedKeyring(t *testing.T, x25519, nR, nS, secret []byte) []byte {
	t.Helper()
	pub, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keyring.NewSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	plain := keyring.AppendSecrets(binary.BigEndian.AppendUint64(nil, 1), []*keyring.Secret{s})
	info := append([]byte("nitro-signer peer-copy v1\x00"+devpki.SignerID+"\x00"), nR...)
	info = append(info, nS...)
	ct, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), info, plain)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// TestForgedPeerCopyIsRefused: the attacker asks the receiver for an offer
// (its nonce nR and its document, with its X25519 key), encrypts a keyring
// it chose to that key, and hands it to keys/peer-import with a genuine
// document over nR — the receiver's own, or another enclave's of the same
// image. Neither sent the ciphertext; the receiver must take neither. A
// genuine copy into an empty keyring whose store holds sealed keyrings
// would start a second lineage, and is refused like keys/import; a genuine
// peer with another configuration is refused too.
func TestForgedPeerCopyIsRefused(t *testing.T) {
	dir := t.TempDir()
	a := newSealedEnv(t, dir, "a-")
	if _, err := a.client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	chosen := make([]byte, 32)
	copy(chosen, "the attacker's own master secret")

	forge := func(t *testing.T, b *env, docFrom func(nR []byte) []byte) error {
		adminB := b.client("admin")
		nS := append(randomNonce(), randomNonce()...) // any 32 bytes: no sender issued them
		var offer api.PeerOfferResponse
		if err := adminB.Call(ctx(t), api.PeerOffer.Route, api.PeerOfferRequest{Challenge: nS}, &offer); err != nil {
			t.Fatalf("peer-request: %v", err)
		}
		d, err := attestation.Verify(offer.Document, attestation.Policy{Roots: b.devRoots, PCRs: b.pcrs, Nonce: nS, Clock: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		ud, err := envelope.ParseUserData(d.UserData)
		if err != nil {
			t.Fatal(err)
		}
		ct := forgedKeyring(t, ud.X25519, offer.Nonce, nS, chosen)
		var res api.KeyringChange
		err = adminB.Call(ctx(t), api.PeerImport.Route,
			api.PeerImportRequest{Nonce: offer.Nonce, Document: docFrom(offer.Nonce), Keyring: ct}, &res)
		if err == nil {
			derived := "nothing"
			if got, err := b.client("broker").DeriveAddress(ctx(t), omniHex, 1); err == nil {
				derived = got.Address
			}
			t.Errorf("forged copy accepted: %+v; epoch 1 now derives %s, the attacker's secret gives %s",
				res, derived, walletAddress(t, chosen, 1, omniHex))
			// The planted keyring is sealed newest in the store: it wins
			// the next boot too.
			b.enclave.kill()
			b.startEnclave("--no-keys")
			b.waitReady()
			if got, err := b.client("broker").DeriveAddress(ctx(t), omniHex, 1); err == nil {
				t.Errorf("after a restart epoch 1 derives %s", got.Address)
			}
		}
		return err
	}
	checkUntouched := func(t *testing.T, b *env) {
		t.Helper()
		if st, err := b.client("admin").KeyStatus(ctx(t)); err != nil || st.Ready || st.Epoch != 0 {
			t.Fatalf("receiver after the refusal: %+v, %v", st, err)
		}
		entries, _ := os.ReadDir(b.stateDir())
		if len(entries) != 1 {
			t.Fatalf("receiver's store holds %d files after the refusal, want the 1 it had", len(entries))
		}
	}

	for _, tc := range []struct {
		name    string
		docFrom func(b *env) func(nR []byte) []byte
		code    api.Code
		message string
	}{
		{"bad_sender_document_is_the_receivers_own", func(b *env) func([]byte) []byte { return b.attestationOver },
			api.CodePeerRefused, "this enclave's own"},
		{"bad_ciphertext_not_from_the_attested_sender", func(*env) func([]byte) []byte { return a.attestationOver },
			api.CodePeerRefused, "not signed by the attested sender"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newEmptyOverSealedEnv(t, dir, tc.name+"-")
			// keys/import is refused here: the store holds a sealed keyring.
			if _, err := b.client("admin").ImportSecret(ctx(t), chosen); code(err) != api.CodeKeyringNotEmpty {
				t.Fatalf("import over a sealed store: %v", err)
			}
			err := forge(t, b, tc.docFrom(b))
			if code(err) != tc.code || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("forged peer-import: %v, want %s (%q)", err, tc.code, tc.message)
			}
			checkUntouched(t, b)
		})
	}

	t.Run("bad_empty_keyring_over_sealed_keyrings", func(t *testing.T) {
		b := newEmptyOverSealedEnv(t, dir, "lineage-")
		_, err := client.CopyKeyring(ctx(t), a.client("peer"), b.client("admin"))
		if code(err) != api.CodeKeyringNotEmpty || !strings.Contains(err.Error(), "second lineage") {
			t.Fatalf("genuine copy into an empty keyring over sealed keyrings: %v", err)
		}
		checkUntouched(t, b)
	})

	t.Run("bad_other_config", func(t *testing.T) {
		// The same image (development builds do not measure the
		// configuration into the PCRs) with another configuration.
		cfgPath := filepath.Join(dir, "other-config.json")
		raw, err := os.ReadFile(filepath.Join(dir, "pki", devpki.EnclaveJSON))
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["replay_window"] = "45s"
		raw, _ = json.MarshalIndent(cfg, "", "  ")
		os.WriteFile(cfgPath, raw, 0o644)
		c := newSealedEnv(t, dir, "otherconfig-", "--no-keys", "--config", cfgPath)
		_, err = client.CopyKeyring(ctx(t), a.client("peer"), c.client("admin"))
		if code(err) != api.CodePeerRefused || !strings.Contains(err.Error(), "configuration") {
			t.Fatalf("copy to an enclave with another configuration: %v", err)
		}
		if st, err := c.client("admin").KeyStatus(ctx(t)); err != nil || st.Epoch != 0 {
			t.Fatalf("receiver with another configuration: %+v, %v", st, err)
		}
	})

	// A genuine copy into a fresh enclave still works, through signerctl.
	t.Run("genuine_copy", func(t *testing.T) {
		want := a.keyView(a.client("broker"), 2)
		b := newSealedEnv(t, dir, "fresh-", "--no-keys")
		out, err := execSignerctl("keys", "sync", "--dev", dir, "--parent", b.parent,
			"--from-dev", dir, "--from-parent", a.parent).CombinedOutput()
		if err != nil {
			t.Fatalf("keys sync: %v\n%s", err, out)
		}
		b.waitReady()
		sameView(t, "the copy", b.keyView(b.client("broker"), 2), want)
	})
}

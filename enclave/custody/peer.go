package custody

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/json"
	"sync"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/envelope"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// Peer copy moves the keyring from a live enclave (the sender, S) to another
// (the receiver, R) through their parents, in four calls an operator's tool
// relays:
//
//  1. S keys/peer-challenge → S's nonce nS.
//  2. R keys/peer-request {challenge: nS} → R's document over nS (its X25519
//     key in user_data) and R's nonce nR.
//  3. S keys/peer-export {challenge: nS, document, nonce: nR} → S verifies
//     R's document (same PCR0/1/2 as its own, not debug, nonce nS, same
//     signer_id) and answers its own document over nR and the keyring
//     encrypted to R's X25519 key.
//  4. R keys/peer-import {nonce: nR, document, keyring} → R verifies S's
//     document the same way over nR, opens the keyring and takes it only if
//     it extends its own (no fewer epochs, no lower generation, the same
//     secret for every epoch it holds), sealed and stored first.
//
// Each nonce is used once and expires after peerTTL.

var ecdhX25519 = ecdh.X25519()

const (
	peerNonceSize = 32
	peerTTL       = 2 * time.Minute
	peerPending   = 16
	peerMaxAge    = 5 * time.Minute
)

// pending holds nonces this enclave issued and has not yet seen used.
type pending struct {
	clock func() time.Time
	mu    sync.Mutex
	m     map[string]pendingEntry
}

type pendingEntry struct {
	expires time.Time
	// offer marks a nonce issued as a receiver (peer-request), as opposed
	// to a sender's challenge; neither is accepted for the other.
	offer bool
	// challenge is, on a receiver, the sender's nonce it answered.
	challenge []byte
}

func newPending(clock func() time.Time) *pending {
	return &pending{clock: clock, m: map[string]pendingEntry{}}
}

func (p *pending) issue(offer bool, challenge []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock()
	for k, e := range p.m {
		if now.After(e.expires) {
			delete(p.m, k)
		}
	}
	if len(p.m) >= peerPending {
		return nil, envelope.Errorf(envelope.CodeOverloaded, "%d peer exchanges already pending", peerPending)
	}
	n := make([]byte, peerNonceSize)
	rand.Read(n)
	p.m[string(n)] = pendingEntry{expires: now.Add(peerTTL), offer: offer, challenge: bytes.Clone(challenge)}
	return n, nil
}

// take consumes a nonce; a nonce unknown, used or expired is a replay.
func (p *pending) take(n []byte, offer bool) (pendingEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[string(n)]
	if ok && e.offer != offer {
		ok = false // not consumed: it belongs to the other side's exchange
	} else {
		delete(p.m, string(n))
	}
	if !ok || p.clock().After(e.expires) {
		return e, envelope.Errorf(envelope.CodeReplayed, "peer nonce unknown, used or expired")
	}
	return e, nil
}

// PeerChallenge is the result of keys/peer-challenge.
type PeerChallenge struct {
	Challenge []byte `json:"challenge"`
}

func (c *Custody) peerChallenge(_ context.Context, params json.RawMessage) (any, error) {
	if err := service.DecodeParams(params, &Empty{}); err != nil {
		return nil, err
	}
	if c.o.Keys.Current() == 0 {
		return nil, envelope.Errorf(envelope.CodeSignerDisabled, "no keys loaded: nothing to copy")
	}
	n, err := c.peers.issue(false, nil)
	if err != nil {
		return nil, err
	}
	return &PeerChallenge{Challenge: n}, nil
}

// PeerRequest is the params of keys/peer-request.
type PeerRequest struct {
	Challenge []byte `json:"challenge"`
}

// PeerOffer is the result of keys/peer-request.
type PeerOffer struct {
	Document []byte `json:"document"`
	Nonce    []byte `json:"nonce"`
}

func (c *Custody) peerRequest(_ context.Context, params json.RawMessage) (any, error) {
	var p PeerRequest
	if err := service.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	if len(p.Challenge) != peerNonceSize {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "challenge must be %d bytes", peerNonceSize)
	}
	n, err := c.peers.issue(true, p.Challenge)
	if err != nil {
		return nil, err
	}
	doc, err := c.o.Attest(p.Challenge)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeInternal, "attestation failed")
	}
	return &PeerOffer{Document: doc, Nonce: n}, nil
}

// PeerExportRequest is the params of keys/peer-export.
type PeerExportRequest struct {
	Challenge []byte `json:"challenge"`
	Document  []byte `json:"document"`
	Nonce     []byte `json:"nonce"`
}

// PeerExport is the result of keys/peer-export.
type PeerExport struct {
	Document []byte `json:"document"`
	Keyring  []byte `json:"keyring"`
}

func peerInfo(signerID string, receiverNonce, senderNonce []byte) []byte {
	out := []byte("nitro-signer peer-copy v1\x00" + signerID + "\x00")
	out = append(out, receiverNonce...)
	return append(out, senderNonce...)
}

func (c *Custody) peerExport(_ context.Context, params json.RawMessage) (any, error) {
	var p PeerExportRequest
	if err := service.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	if len(p.Nonce) != peerNonceSize {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "nonce must be %d bytes", peerNonceSize)
	}
	if _, err := c.peers.take(p.Challenge, false); err != nil {
		return nil, err
	}
	ud, err := c.verifyPeer(p.Document, p.Challenge)
	if err != nil {
		return nil, err
	}
	pub, err := hpkeKEM.NewPublicKey(ud.X25519)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodePeerRefused, "the receiver's X25519 key is invalid")
	}
	c.mu.Lock()
	gen, epochs := c.gen, c.o.Keys.Snapshot()
	c.mu.Unlock()
	if len(epochs) == 0 || gen == 0 {
		return nil, envelope.Errorf(envelope.CodeSignerDisabled, "no sealed keyring loaded: nothing to copy")
	}
	plain := encodeKeyring(gen, epochs)
	defer clear(plain)
	ct, err := hpke.Seal(pub, hpkeKDF, hpkeAEAD, peerInfo(c.o.SignerID, p.Nonce, p.Challenge), plain)
	if err != nil {
		return nil, err
	}
	doc, err := c.o.Attest(p.Nonce)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeInternal, "attestation failed")
	}
	c.log.Info("keyring exported to an attested peer", "generation", gen, "k3_epoch", len(epochs))
	return &PeerExport{Document: doc, Keyring: ct}, nil
}

// PeerImportRequest is the params of keys/peer-import.
type PeerImportRequest struct {
	Nonce    []byte `json:"nonce"`
	Document []byte `json:"document"`
	Keyring  []byte `json:"keyring"`
}

func (c *Custody) peerImport(ctx context.Context, params json.RawMessage) (any, error) {
	var p PeerImportRequest
	if err := service.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	e, err := c.peers.take(p.Nonce, true)
	if err != nil {
		return nil, err
	}
	if _, err := c.verifyPeer(p.Document, p.Nonce); err != nil {
		return nil, err
	}
	priv, err := hpke.NewDHKEMPrivateKey(c.o.X25519)
	if err != nil {
		return nil, err
	}
	plain, err := hpke.Open(priv, hpkeKDF, hpkeAEAD, peerInfo(c.o.SignerID, p.Nonce, e.challenge), p.Keyring)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "the keyring does not open with this enclave's key and nonces")
	}
	defer clear(plain)
	gen, epochs, err := decodeKeyring(plain)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodeBadRequest, "the peer's keyring is malformed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.o.Keys.CheckExtends(epochs); err != nil {
		return nil, envelope.Errorf(envelope.CodeRollback, "%v", err)
	}
	current := c.o.Keys.Current()
	switch {
	case gen == c.gen && len(epochs) == int(current):
		r := c.result()
		r.Unchanged = true
		return r, nil
	case gen <= c.gen:
		return nil, envelope.Errorf(envelope.CodeRollback, "the peer's keyring is generation %d, this one %d", gen, c.gen)
	}
	if err := c.commit(ctx, &seal.Keyring{Generation: gen, Epochs: epochs}); err != nil {
		return nil, err
	}
	c.log.Info("keyring copied from an attested peer", "generation", gen, "k3_epoch", len(epochs))
	return c.result(), nil
}

// verifyPeer checks a peer's attestation document: under the trusted roots,
// PCR0, PCR1 and PCR2 equal to this enclave's, not debug, over nonce, recent,
// for the same signer_id, with an X25519 key.
func (c *Custody) verifyPeer(doc, nonce []byte) (*envelope.UserData, error) {
	pcrs := c.o.Peers.PCRs
	if len(pcrs) < 3 {
		return nil, envelope.Errorf(envelope.CodePeerRefused, "this enclave's PCRs are unknown: it cannot judge a peer")
	}
	zero := true
	for i := range 3 {
		if len(pcrs[i]) == 0 {
			return nil, envelope.Errorf(envelope.CodePeerRefused, "this enclave's PCR%d is unknown", i)
		}
		for _, b := range pcrs[i] {
			zero = zero && b == 0
		}
	}
	if zero {
		return nil, envelope.Errorf(envelope.CodePeerRefused, "a debug-mode enclave does not exchange keyrings")
	}
	d, err := attestation.Verify(doc, attestation.Policy{
		Roots: c.o.Peers.Roots, PCRs: map[int][]byte{0: pcrs[0], 1: pcrs[1], 2: pcrs[2]},
		Nonce: nonce, MaxAge: peerMaxAge, Clock: c.o.Clock,
	})
	if err != nil {
		c.log.Warn("peer attestation refused", "rule", attestation.Rule(err))
		return nil, envelope.Errorf(envelope.CodePeerRefused, "peer attestation: %s", attestation.Rule(err))
	}
	ud, err := envelope.ParseUserData(d.UserData)
	if err != nil {
		return nil, envelope.Errorf(envelope.CodePeerRefused, "peer user_data: %v", err)
	}
	if ud.SignerID != c.o.SignerID {
		return nil, envelope.Errorf(envelope.CodePeerRefused, "peer serves another signer_id")
	}
	if len(ud.X25519) == 0 {
		return nil, envelope.Errorf(envelope.CodePeerRefused, "peer user_data has no X25519 key")
	}
	return ud, nil
}

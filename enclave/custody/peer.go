package custody

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// Peer copy moves the keyring from a live enclave (the sender, S) to another
// (the receiver, R) through their parents, in four calls an operator's tool
// relays:
//
//  1. S keys/peer-challenge → S's nonce nS.
//  2. R keys/peer-request {challenge: nS} → R's document over nS (its X25519
//     key in user_data) and R's nonce nR.
//  3. S keys/peer-export {challenge: nS, document, nonce: nR} → S verifies
//     R's document (PCR0/1/2 of its own image, or a release its
//     configuration names as a peer; not debug, nonce nS, same signer_id,
//     the same config_sha256 when the image is S's own, not S itself) and
//     answers its own
//     document over nR, the keyring encrypted to R's X25519 key (HPKE base
//     mode), and a signature over that ciphertext and both nonces by S's
//     per-boot response key — the public_key of S's document.
//  4. R keys/peer-import {nonce: nR, document, keyring, signature} → R
//     verifies S's document the same way over nR, then the signature with
//     the document's public_key, opens the keyring and takes it only if it
//     extends its own (no fewer epochs, no lower generation, the same secret
//     for every epoch it holds), sealed and stored first. Into an empty
//     keyring it is taken only when the store holds no sealed keyring, as
//     keys/import: a copy never starts a second lineage.
//
// A genuine document over nR proves only that some enclave of the image
// attested over it, and anyone can have one made through the attestation
// route. What binds the keyring to an attested sender is the signature: only
// the enclave holding the document's public_key could have made it, and an
// enclave signs only a keyring it holds itself, encrypted by itself.
//
// Each nonce is used once and expires after peerTTL.

var ecdhX25519 = ecdh.X25519()

const (
	peerNonceSize = 32
	peerTTL       = 2 * time.Minute
	peerPending   = 16
	peerMaxAge    = 5 * time.Minute
	// maxPeerSignature bounds an ASN.1 ECDSA P-256 signature (72 bytes at
	// most).
	maxPeerSignature = 80
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
		return nil, api.Errorf(api.CodeOverloaded, "%d peer exchanges already pending", peerPending)
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
		return e, api.Errorf(api.CodeReplayed, "peer nonce unknown, used or expired")
	}
	return e, nil
}

func (c *Custody) peerChallenge(_ context.Context, _ *service.Request, p *api.PeerChallengeRequest) (*api.PeerChallengeResponse, error) {
	if c.o.Keys.Current() == 0 {
		return nil, api.Errorf(api.CodeSignerDisabled, "no keys loaded: nothing to copy")
	}
	n, err := c.peers.issue(false, nil)
	if err != nil {
		return nil, err
	}
	return &api.PeerChallengeResponse{Challenge: n}, nil
}

func (c *Custody) peerOffer(_ context.Context, _ *service.Request, p *api.PeerOfferRequest) (*api.PeerOfferResponse, error) {
	if len(p.Challenge) != peerNonceSize {
		return nil, api.Errorf(api.CodeBadRequest, "challenge must be %d bytes", peerNonceSize)
	}
	n, err := c.peers.issue(true, p.Challenge)
	if err != nil {
		return nil, err
	}
	doc, err := c.o.Attest(p.Challenge)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "attestation failed")
	}
	return &api.PeerOfferResponse{Document: doc, Nonce: n}, nil
}

func peerInfo(signerID string, receiverNonce, senderNonce []byte) []byte {
	out := []byte("nitro-signer peer-copy v1\x00" + signerID + "\x00")
	out = append(out, receiverNonce...)
	return append(out, senderNonce...)
}

// peerSignedLabel separates a peer copy's signature from everything else
// the response key signs: JWS signing inputs are base64url text and cannot
// begin with it.
const peerSignedLabel = "nitro-signer peer-copy signature v1\x00"

// PeerSigned is the message a sender signs for a receiver: the label,
// signer_id (two-byte length first), the receiver's nonce, the sender's
// nonce (32 bytes each) and the keyring ciphertext (HPKE enc ‖ ct).
func PeerSigned(signerID string, receiverNonce, senderNonce, keyring []byte) []byte {
	out := make([]byte, 0, len(peerSignedLabel)+2+len(signerID)+len(receiverNonce)+len(senderNonce)+len(keyring))
	out = append(out, peerSignedLabel...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(signerID)))
	out = append(out, signerID...)
	out = append(out, receiverNonce...)
	out = append(out, senderNonce...)
	return append(out, keyring...)
}

// Rules a peer exchange breaks, under errors.Is; on the wire each is a
// peer_attestation_refused or keyring_not_empty answer naming the rule.
var (
	// ErrPeerIsSelf: the peer's document is this enclave's own (its X25519
	// key or its response key), as the attestation route gives anyone.
	ErrPeerIsSelf = errors.New("custody: the peer's document is this enclave's own")
	// ErrPeerConfig: a peer of this enclave's own image attests another
	// config_sha256. Development builds do not measure the configuration
	// into the PCRs.
	ErrPeerConfig = errors.New("custody: the peer runs another configuration")
	// ErrPeerUnsigned: the keyring is not signed by the response key of
	// the document that came with it.
	ErrPeerUnsigned = errors.New("custody: the keyring is not signed by the attested sender")
	// ErrSecondLineage: a copy into an empty keyring while the store holds
	// sealed keyrings, which keys/import refuses alike.
	ErrSecondLineage = errors.New("custody: a copy into an empty keyring over sealed keyrings would start a second lineage")
)

// refusal is a wire error that is also its rule under errors.Is.
type refusal struct {
	rule error
	wire *api.Error
}

func (r *refusal) Error() string   { return r.wire.Error() }
func (r *refusal) Unwrap() []error { return []error{r.rule, r.wire} }

func refuse(rule error, code api.Code, format string, args ...any) error {
	return &refusal{rule: rule, wire: api.Errorf(code, format, args...)}
}

// signPeer signs a keyring ciphertext for a receiver with the response key.
func (c *Custody) signPeer(receiverNonce, senderNonce, keyring []byte) ([]byte, error) {
	if c.o.Signer == nil {
		return nil, api.Errorf(api.CodeInternal, "no response key to sign a peer copy")
	}
	digest := sha256.Sum256(PeerSigned(c.o.SignerID, receiverNonce, senderNonce, keyring))
	sig, err := c.o.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "signing the peer copy failed")
	}
	return sig, nil
}

// checkPeerSignature verifies a keyring ciphertext's signature with the
// response key of the sender's verified document.
func (c *Custody) checkPeerSignature(senderKey []byte, receiverNonce, senderNonce, keyring, sig []byte) error {
	if len(senderKey) == 0 {
		return refuse(ErrPeerUnsigned, api.CodePeerRefused, "the keyring is not signed by the attested sender: its document binds no public_key")
	}
	pub, err := x509.ParsePKIXPublicKey(senderKey)
	k, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok || k.Curve != elliptic.P256() {
		return refuse(ErrPeerUnsigned, api.CodePeerRefused, "the keyring is not signed by the attested sender: its public_key is not a P-256 key")
	}
	digest := sha256.Sum256(PeerSigned(c.o.SignerID, receiverNonce, senderNonce, keyring))
	if len(sig) == 0 || len(sig) > maxPeerSignature || !ecdsa.VerifyASN1(k, digest[:], sig) {
		return refuse(ErrPeerUnsigned, api.CodePeerRefused, "the keyring is not signed by the attested sender")
	}
	return nil
}

func (c *Custody) peerExport(ctx context.Context, _ *service.Request, p *api.PeerExportRequest) (*api.PeerExportResponse, error) {
	if len(p.Nonce) != peerNonceSize {
		return nil, api.Errorf(api.CodeBadRequest, "nonce must be %d bytes", peerNonceSize)
	}
	if _, err := c.peers.take(p.Challenge, false); err != nil {
		return nil, err
	}
	peer, err := c.verifyPeer(p.Document, p.Challenge)
	if err != nil {
		return nil, err
	}
	pub, err := hpkeKEM.NewPublicKey(peer.ud.X25519)
	if err != nil {
		return nil, api.Errorf(api.CodePeerRefused, "the receiver's X25519 key is invalid")
	}
	if err := c.lockMethod(ctx); err != nil {
		return nil, err
	}
	gen, epochs := c.gen, c.o.Keys.Snapshot()
	c.unlock()
	if len(epochs) == 0 || gen == 0 {
		return nil, api.Errorf(api.CodeSignerDisabled, "no sealed keyring loaded: nothing to copy")
	}
	plain := encodeKeyring(gen, epochs)
	defer clear(plain)
	ct, err := hpke.Seal(pub, hpkeKDF, hpkeAEAD, peerInfo(c.o.SignerID, p.Nonce, p.Challenge), plain)
	if err != nil {
		return nil, err
	}
	sig, err := c.signPeer(p.Nonce, p.Challenge, ct)
	if err != nil {
		return nil, err
	}
	doc, err := c.o.Attest(p.Nonce)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "attestation failed")
	}
	c.log.Info("keyring exported to an attested peer", "peer_release", peer.release, "generation", gen, "k3_epoch", len(epochs))
	return &api.PeerExportResponse{Document: doc, Keyring: ct, Signature: sig}, nil
}

func (c *Custody) peerImport(ctx context.Context, _ *service.Request, p *api.PeerImportRequest) (*api.PeerImportResponse, error) {
	e, err := c.peers.take(p.Nonce, true)
	if err != nil {
		return nil, err
	}
	peer, err := c.verifyPeer(p.Document, p.Nonce)
	if err != nil {
		return nil, err
	}
	if err := c.checkPeerSignature(peer.key, p.Nonce, e.challenge, p.Keyring, p.Signature); err != nil {
		return nil, err
	}
	priv, err := hpke.NewDHKEMPrivateKey(c.o.X25519)
	if err != nil {
		return nil, err
	}
	plain, err := hpke.Open(priv, hpkeKDF, hpkeAEAD, peerInfo(c.o.SignerID, p.Nonce, e.challenge), p.Keyring)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "the keyring does not open with this enclave's key and nonces")
	}
	defer clear(plain)
	gen, epochs, err := decodeKeyring(plain)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "the peer's keyring is malformed")
	}
	if err := c.lockMethod(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	if err := c.checkLineage(ctx); err != nil {
		return nil, err
	}
	if err := c.o.Keys.CheckExtends(epochs); err != nil {
		return nil, api.Errorf(api.CodeRollback, "%v", err)
	}
	current := c.o.Keys.Current()
	switch {
	case gen == c.gen && len(epochs) == int(current):
		r := c.result()
		r.Unchanged = true
		return r, nil
	case gen <= c.gen:
		return nil, api.Errorf(api.CodeRollback, "the peer's keyring is generation %d, this one %d", gen, c.gen)
	}
	if err := c.commit(ctx, &seal.Keyring{Generation: gen, Epochs: epochs}); err != nil {
		return nil, err
	}
	c.log.Info("keyring copied from an attested peer", "peer_release", peer.release, "generation", gen, "k3_epoch", len(epochs))
	return c.result(), nil
}

// checkLineage refuses a copy into an empty keyring while the store holds
// sealed keyrings, readable or not, as Import does: those are this
// deployment's lineage, to be unsealed, and a copy over them would become
// the newest sequence and win every later boot. The caller holds c.mu.
func (c *Custody) checkLineage(ctx context.Context) error {
	if c.o.Keys.Current() != 0 {
		return nil // the copy must extend what is loaded: CheckExtends
	}
	if c.o.Store == nil || c.o.Sealer == nil {
		return api.Errorf(api.CodeStateUnavailable, "no state store or sealer configured: a copy could not be sealed")
	}
	seqs, _, err := c.o.Store.List(ctx, 0)
	if err != nil {
		c.log.Error("listing the state store failed", "err", err)
		return api.Errorf(api.CodeStateUnavailable, "listing the state store failed")
	}
	if len(seqs) > 0 {
		return refuse(ErrSecondLineage, api.CodeKeyringNotEmpty,
			"the state store holds sealed keyrings (the oldest is sequence %d) that this enclave has not unsealed: "+
				"a copy into its empty keyring would start a second lineage; unseal them", seqs[0])
	}
	return nil
}

// attestedPeer is what a verified peer document tells: its user_data, its
// response key (DER SubjectPublicKeyInfo; empty if it binds none) and the
// release it matched (ownImage for this enclave's own PCRs).
type attestedPeer struct {
	ud      *api.UserData
	key     []byte
	release string
}

// ownImage names, in logs, the measurement of this enclave's own PCR0..2
// among the releases a peer may match.
const ownImage = "(this image)"

// verifyPeer checks a peer's attestation document: under the trusted roots,
// not debug, over nonce, recent, matching this enclave's own PCR0, PCR1 and
// PCR2 or one of the configured peer releases (whole, inside its window),
// for the same signer_id, with an X25519 key, and not this enclave's own
// document. A peer of this very image must also run this configuration
// (config_sha256): development builds do not measure the configuration into
// the PCRs, and in production the PCRs cover it, so equal PCRs and another
// configuration can only be a development enclave started with another
// file. A peer of another listed release runs that release's configuration,
// which differs at least in the peers it names (see peerConfig).
func (c *Custody) verifyPeer(doc, nonce []byte) (*attestedPeer, error) {
	pcrs := c.o.Peers.PCRs
	if len(pcrs) < 3 {
		return nil, api.Errorf(api.CodePeerRefused, "this enclave's PCRs are unknown: it cannot judge a peer")
	}
	zero := true
	for i := range 3 {
		if len(pcrs[i]) == 0 {
			return nil, api.Errorf(api.CodePeerRefused, "this enclave's PCR%d is unknown", i)
		}
		for _, b := range pcrs[i] {
			zero = zero && b == 0
		}
	}
	if zero {
		return nil, api.Errorf(api.CodePeerRefused, "a debug-mode enclave does not exchange keyrings")
	}
	if len(c.o.ConfigSHA256) != sha256.Size {
		return nil, api.Errorf(api.CodePeerRefused, "this enclave's config_sha256 is unknown: it cannot judge a peer")
	}
	allowed := make([]attestation.Measurement, 0, 1+len(c.o.Peers.Releases))
	allowed = append(allowed, attestation.Measurement{Name: ownImage, PCRs: map[int][]byte{0: pcrs[0], 1: pcrs[1], 2: pcrs[2]}})
	allowed = append(allowed, c.o.Peers.Releases...)
	d, err := attestation.Verify(doc, attestation.Policy{
		Roots: c.o.Peers.Roots, Allowed: allowed,
		Nonce: nonce, MaxAge: peerMaxAge, Clock: c.o.Clock,
	})
	if err != nil {
		c.log.Warn("peer attestation refused", "rule", attestation.Rule(err))
		return nil, refuse(err, api.CodePeerRefused, "peer attestation: %s", attestation.Rule(err))
	}
	ud, err := envelope.ParseUserData(d.UserData)
	if err != nil {
		return nil, api.Errorf(api.CodePeerRefused, "peer user_data: %v", err)
	}
	if ud.SignerID != c.o.SignerID {
		return nil, api.Errorf(api.CodePeerRefused, "peer serves another signer_id")
	}
	if len(ud.X25519) == 0 {
		return nil, api.Errorf(api.CodePeerRefused, "peer user_data has no X25519 key")
	}
	if c.isSelf(ud.X25519, d.PublicKey) {
		c.log.Warn("peer document refused: it is this enclave's own")
		return nil, refuse(ErrPeerIsSelf, api.CodePeerRefused, "the peer's document is this enclave's own")
	}
	if err := c.peerConfig(d.PCRs, ud.ConfigSHA256); err != nil {
		return nil, err
	}
	return &attestedPeer{ud: ud, key: d.PublicKey, release: d.Measurement}, nil
}

// peerConfig holds a verified peer's config_sha256 to this enclave's when
// the peer's PCR0, PCR1 and PCR2 are this enclave's own, whichever
// measurement it matched (a peer release may well list this very image).
//
// A peer of another release is not held to this configuration. Its
// configuration is baked into its image, so its PCRs, which matched a
// release this image was built to accept, already say which one it runs;
// and it cannot equal this one: the newer of two images names the older in
// its peers, which the older's configuration cannot do back (the newer's
// PCRs depend on the older's). What the copy itself needs to agree on is bound
// elsewhere: the signer_id, checked above and part of both the HPKE info
// and the signed message, so a keyring never crosses deployments.
func (c *Custody) peerConfig(peerPCRs map[int][]byte, config []byte) error {
	for i := range 3 {
		if !bytes.Equal(peerPCRs[i], c.o.Peers.PCRs[i]) {
			return nil // another release's image
		}
	}
	if !bytes.Equal(config, c.o.ConfigSHA256) {
		c.log.Warn("peer document refused: another configuration", "peer_config_sha256", config)
		return refuse(ErrPeerConfig, api.CodePeerRefused, "the peer runs another configuration (config_sha256 %x, this enclave %x)",
			config, c.o.ConfigSHA256)
	}
	return nil
}

// isSelf reports whether a document's X25519 key or response key is this
// enclave's.
func (c *Custody) isSelf(x25519, publicKey []byte) bool {
	if c.o.X25519 != nil && bytes.Equal(x25519, c.o.X25519.PublicKey().Bytes()) {
		return true
	}
	if c.o.Signer == nil || len(publicKey) == 0 {
		return false
	}
	own, err := x509.MarshalPKIXPublicKey(c.o.Signer.Public())
	return err == nil && bytes.Equal(own, publicKey)
}

package client

import (
	"context"
	"fmt"

	"github.com/nitro-signer/nitro-signer/api"
)

// KeyStatus calls v1/keys/status.
func (c *Client) KeyStatus(ctx context.Context) (*api.KeyStatusResponse, error) {
	return Invoke(ctx, c, api.KeyStatus, &api.KeyStatusRequest{})
}

// RotateKeys calls v1/keys/rotate: the enclave adds an epoch from its own
// randomness, sealed and stored before it becomes current.
func (c *Client) RotateKeys(ctx context.Context) (*api.KeyringChange, error) {
	return Invoke(ctx, c, api.RotateKeys, &api.RotateKeysRequest{})
}

// ImportSecret attests the enclave behind one replica with a fresh nonce,
// encrypts the 32-byte master secret to the X25519 key its verified
// document binds (HPKE), and calls v1/keys/import there. The secret never
// leaves this process in the clear. Like every call that changes state it
// is signed once, and tried at another replica only if it never left.
func (c *Client) ImportSecret(ctx context.Context, secret []byte) (*api.KeyringChange, error) {
	var r api.ImportKeyResponse
	err := c.changeState(ctx, nil, api.ImportKey.Route, func(a *Attested) (any, error) {
		if a.UserData.Epoch != 0 {
			return nil, fmt.Errorf("client: the enclave already holds epoch %d: an import goes only into an empty keyring", a.UserData.Epoch)
		}
		sealed, err := api.SealImport(a.UserData.X25519, c.cfg.SignerID, secret)
		if err != nil {
			return nil, err
		}
		return &api.ImportKeyRequest{SealedSecret: sealed}, nil
	}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CopyKeyring copies the keyring from the enclave behind from (called with
// the peer role) to the one behind to (called with the admin role). The
// two enclaves verify each other's attestation, and the receiver takes only
// a keyring signed by the attested sender; this client only relays. The
// four calls are a session with one enclave on each side, so each client's
// are made at one replica, the first each picks, without failover.
func CopyKeyring(ctx context.Context, from, to *Client) (*api.KeyringChange, error) {
	src, err := from.pick(ctx, nil, nil)
	if err != nil {
		return nil, err
	}
	src.release()
	dst, err := to.pick(ctx, nil, nil)
	if err != nil {
		return nil, err
	}
	dst.release()
	ch, err := invokeAt(ctx, from, src, api.PeerChallenge, &api.PeerChallengeRequest{})
	if err != nil {
		return nil, fmt.Errorf("peer-challenge: %w", err)
	}
	offer, err := invokeAt(ctx, to, dst, api.PeerOffer, &api.PeerOfferRequest{Challenge: ch.Challenge})
	if err != nil {
		return nil, fmt.Errorf("peer-request: %w", err)
	}
	exp, err := invokeAt(ctx, from, src, api.PeerExport,
		&api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce})
	if err != nil {
		return nil, fmt.Errorf("peer-export: %w", err)
	}
	res, err := invokeAt(ctx, to, dst, api.PeerImport,
		&api.PeerImportRequest{Nonce: offer.Nonce, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature})
	if err != nil {
		return nil, fmt.Errorf("peer-import: %w", err)
	}
	return res, nil
}

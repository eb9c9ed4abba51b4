package client

import (
	"context"
	"fmt"

	"github.com/nitro-signer/nitro-signer/enclave/custody"
)

// KeyStatus calls v1/keys/status.
func (c *Client) KeyStatus(ctx context.Context) (*custody.Status, error) {
	return callTyped[custody.Status](ctx, c, custody.RouteStatus, custody.Empty{})
}

// RotateKeys calls v1/keys/rotate: the enclave adds an epoch from its own
// randomness, sealed and stored before it becomes current.
func (c *Client) RotateKeys(ctx context.Context) (*custody.ChangeResult, error) {
	return callTyped[custody.ChangeResult](ctx, c, custody.RouteRotate, custody.Empty{})
}

// ImportSecret attests the enclave with a fresh nonce, encrypts the 32-byte
// master secret to the X25519 key its verified document binds (HPKE), and
// calls v1/keys/import. The secret never leaves this process in the clear.
func (c *Client) ImportSecret(ctx context.Context, secret []byte) (*custody.ChangeResult, error) {
	a, err := c.Attest(ctx)
	if err != nil {
		return nil, err
	}
	if a.UserData.Epoch != 0 {
		return nil, fmt.Errorf("client: the enclave already holds epoch %d: an import goes only into an empty keyring", a.UserData.Epoch)
	}
	sealed, err := custody.SealImport(a.UserData.X25519, c.cfg.SignerID, secret)
	if err != nil {
		return nil, err
	}
	return callTyped[custody.ChangeResult](ctx, c, custody.RouteImport, custody.ImportRequest{Secret: sealed})
}

// CopyKeyring copies the keyring from the enclave behind from (called with
// the peer role) to the one behind to (called with the admin role). The
// two enclaves verify each other's attestation, and the receiver takes only
// a keyring signed by the attested sender; this client only relays.
func CopyKeyring(ctx context.Context, from, to *Client) (*custody.ChangeResult, error) {
	ch, err := callTyped[custody.PeerChallenge](ctx, from, custody.RoutePeerChallenge, custody.Empty{})
	if err != nil {
		return nil, fmt.Errorf("peer-challenge: %w", err)
	}
	offer, err := callTyped[custody.PeerOffer](ctx, to, custody.RoutePeerRequest, custody.PeerRequest{Challenge: ch.Challenge})
	if err != nil {
		return nil, fmt.Errorf("peer-request: %w", err)
	}
	exp, err := callTyped[custody.PeerExport](ctx, from, custody.RoutePeerExport,
		custody.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce})
	if err != nil {
		return nil, fmt.Errorf("peer-export: %w", err)
	}
	res, err := callTyped[custody.ChangeResult](ctx, to, custody.RoutePeerImport,
		custody.PeerImportRequest{Nonce: offer.Nonce, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature})
	if err != nil {
		return nil, fmt.Errorf("peer-import: %w", err)
	}
	return res, nil
}

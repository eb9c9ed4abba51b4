package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
)

// DeriveAddress calls v1/derive-address; epoch 0 means the current epoch.
func (c *Client) DeriveAddress(ctx context.Context, operatorOmni string, epoch uint32) (*api.DeriveAddressResponse, error) {
	p := api.DeriveAddressRequest{OperatorOmni: operatorOmni}
	if epoch != 0 {
		p.Epoch = &epoch
	}
	return Invoke(ctx, c, api.DeriveAddress, &p)
}

// DeriveCredentialKEK calls v1/derive-cred-kek with a fresh reply key and returns
// the decrypted 32-byte KEK. The caller must clear it when done.
func (c *Client) DeriveCredentialKEK(ctx context.Context, operatorOmni string, epoch uint32) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var r api.DeriveCredentialKEKResponse
	p := api.DeriveCredentialKEKRequest{OperatorOmni: operatorOmni, Epoch: epoch}
	if err := c.call(ctx, nil, api.DeriveCredentialKEK.Route, &p, &r, &jose.JSONWebKey{Key: &key.PublicKey}); err != nil {
		return nil, err
	}
	kek, err := openReply(key, r.KEK, "kek_jwe")
	if err != nil {
		return nil, err
	}
	if len(kek) != 32 {
		clear(kek)
		return nil, fmt.Errorf("%w: kek_jwe does not decrypt to 32 bytes", ErrResponse)
	}
	return kek, nil
}

// openReply decrypts a result member that is a compact JWE (ECDH-ES,
// A256GCM) to the call's reply key. Its errors never quote the plaintext.
func openReply(key *ecdsa.PrivateKey, compact, member string) ([]byte, error) {
	jwe, err := jose.ParseEncryptedCompact(compact, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrResponse, member, err)
	}
	plain, err := jwe.Decrypt(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not decrypt to the reply key", ErrResponse, member)
	}
	return plain, nil
}

// SignSIWE calls v1/sign/siwe.
func (c *Client) SignSIWE(ctx context.Context, actorOmni, message string) (*api.SignSIWEResponse, error) {
	return Invoke(ctx, c, api.SignSIWE, &api.SignSIWERequest{ActorOmni: actorOmni, SIWEMessage: message})
}

// SignTypedData calls v1/sign/typed-data with eth_signTypedData_v4 JSON.
func (c *Client) SignTypedData(ctx context.Context, actorOmni string, typedData json.RawMessage) (*api.SignTypedDataResponse, error) {
	return Invoke(ctx, c, api.SignTypedData, &api.SignTypedDataRequest{ActorOmni: actorOmni, TypedData: typedData})
}

// SignAuditRow calls v1/sign/audit-row with the row's deterministic CBOR.
func (c *Client) SignAuditRow(ctx context.Context, actorOmni string, row []byte) (*api.SignAuditRowResponse, error) {
	return Invoke(ctx, c, api.SignAuditRow, &api.SignAuditRowRequest{ActorOmni: actorOmni, AuditRow: fmt.Sprintf("%x", row)})
}

// VerifyDeviceSignature calls v1/verify/k10-sig.
func (c *Client) VerifyDeviceSignature(ctx context.Context, p api.VerifyDeviceSignatureRequest) (*api.VerifyDeviceSignatureResponse, error) {
	return Invoke(ctx, c, api.VerifyDeviceSignature, &p)
}

// VerifyWebAuthn calls v1/verify/k11-assertion.
func (c *Client) VerifyWebAuthn(ctx context.Context, p api.VerifyWebAuthnRequest) (*api.VerifyWebAuthnResponse, error) {
	return Invoke(ctx, c, api.VerifyWebAuthn, &p)
}

// DevDeriveAddress calls dev/derive-address.
func (c *Client) DevDeriveAddress(ctx context.Context, omni string) (*api.DevDeriveAddressResponse, error) {
	return Invoke(ctx, c, api.DevDeriveAddress, &api.DevDeriveAddressRequest{OmniAccount: omni})
}

// DevSignMessage calls dev/sign-message.
func (c *Client) DevSignMessage(ctx context.Context, omni, messageHex string) (*api.DevSignMessageResponse, error) {
	return Invoke(ctx, c, api.DevSignMessage, &api.DevSignMessageRequest{OmniAccount: omni, MessageHex: messageHex})
}

// DevSignTypedData calls dev/sign-typed-data.
func (c *Client) DevSignTypedData(ctx context.Context, omni string, typedData json.RawMessage) (*api.DevSignTypedDataResponse, error) {
	return Invoke(ctx, c, api.DevSignTypedData, &api.DevSignTypedDataRequest{OmniAccount: omni, TypedData: typedData})
}

// DevDeriveDevice calls dev/derive-device.
func (c *Client) DevDeriveDevice(ctx context.Context, actorOmni string) (*api.DevDeriveDeviceResponse, error) {
	return Invoke(ctx, c, api.DevDeriveDevice, &api.DevDeriveDeviceRequest{ActorOmni: actorOmni})
}

// DevSignDeviceCapPop calls dev/sign-device-cap-pop.
func (c *Client) DevSignDeviceCapPop(ctx context.Context, p api.DevSignDeviceCapPopRequest) (*api.DevSignDeviceCapPopResponse, error) {
	return Invoke(ctx, c, api.DevSignDeviceCapPop, &p)
}

// Invoke calls method m with params (nil: the zero P) and returns its
// verified result: the typed form of [Client.Call], which a client/enclave
// mismatch in either type fails to compile. A method whose answer is
// encrypted to a reply key has its own method (DeriveCredentialKEK), which
// makes the key and opens the answer; Invoke refuses it.
func Invoke[P, R any](ctx context.Context, c *Client, m api.Method[P, R], params *P) (*R, error) {
	if m.ReplyKey {
		return nil, fmt.Errorf("client: %s answers encrypted to a reply key: call its own method", m.Route)
	}
	if params == nil {
		params = new(P)
	}
	return invokeAt(ctx, c, nil, m, params)
}

// invokeAt is Invoke at replica pin only, when pin is set.
func invokeAt[P, R any](ctx context.Context, c *Client, pin *replica, m api.Method[P, R], params *P) (*R, error) {
	var r R
	if err := c.call(ctx, pin, m.Route, params, &r, nil); err != nil {
		return nil, err
	}
	return &r, nil
}

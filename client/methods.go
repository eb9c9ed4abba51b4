package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// DeriveAddress calls v1/derive-address; epoch 0 means the current epoch.
func (c *Client) DeriveAddress(ctx context.Context, operatorOmni string, epoch uint32) (*service.DeriveAddressResponse, error) {
	p := service.DeriveAddressRequest{OperatorOmni: operatorOmni}
	if epoch != 0 {
		p.Epoch = &epoch
	}
	return callTyped[service.DeriveAddressResponse](ctx, c, "v1/derive-address", p)
}

// DeriveCredKEK calls v1/derive-cred-kek with a fresh reply key and returns
// the decrypted 32-byte KEK. The caller must clear it when done.
func (c *Client) DeriveCredKEK(ctx context.Context, operatorOmni string, epoch uint32) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var r service.DeriveCredKEKResponse
	p := service.DeriveCredKEKRequest{OperatorOmni: operatorOmni, Epoch: epoch}
	if err := c.call(ctx, "v1/derive-cred-kek", p, &r, &jose.JSONWebKey{Key: &key.PublicKey}); err != nil {
		return nil, err
	}
	jwe, err := jose.ParseEncryptedCompact(r.KEK, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, fmt.Errorf("%w: kek_jwe: %v", ErrResponse, err)
	}
	kek, err := jwe.Decrypt(key)
	if err != nil || len(kek) != 32 {
		return nil, fmt.Errorf("%w: kek_jwe does not decrypt to 32 bytes", ErrResponse)
	}
	return kek, nil
}

// SignSIWE calls v1/sign/siwe.
func (c *Client) SignSIWE(ctx context.Context, actorOmni, message string) (*service.SignSIWEResponse, error) {
	return callTyped[service.SignSIWEResponse](ctx, c, "v1/sign/siwe", service.SignSIWERequest{ActorOmni: actorOmni, SIWEMessage: message})
}

// SignTypedData calls v1/sign/typed-data with eth_signTypedData_v4 JSON.
func (c *Client) SignTypedData(ctx context.Context, actorOmni string, typedData json.RawMessage) (*service.TypedDataResponse, error) {
	return callTyped[service.TypedDataResponse](ctx, c, "v1/sign/typed-data", service.SignTypedDataRequest{ActorOmni: actorOmni, TypedData: typedData})
}

// SignAuditRow calls v1/sign/audit-row with the row's deterministic CBOR.
func (c *Client) SignAuditRow(ctx context.Context, actorOmni string, row []byte) (*service.SignAuditRowResponse, error) {
	return callTyped[service.SignAuditRowResponse](ctx, c, "v1/sign/audit-row", service.SignAuditRowRequest{ActorOmni: actorOmni, AuditRow: fmt.Sprintf("%x", row)})
}

// VerifyK10 calls v1/verify/k10-sig.
func (c *Client) VerifyK10(ctx context.Context, p service.VerifyK10Request) (*service.VerifyResponse, error) {
	return callTyped[service.VerifyResponse](ctx, c, "v1/verify/k10-sig", p)
}

// VerifyK11 calls v1/verify/k11-assertion.
func (c *Client) VerifyK11(ctx context.Context, p service.VerifyK11Request) (*service.VerifyK11Response, error) {
	return callTyped[service.VerifyK11Response](ctx, c, "v1/verify/k11-assertion", p)
}

// DevDeriveAddress calls dev/derive-address.
func (c *Client) DevDeriveAddress(ctx context.Context, omni string) (*service.DevDeriveAddressResponse, error) {
	return callTyped[service.DevDeriveAddressResponse](ctx, c, "dev/derive-address", service.DevDeriveAddressRequest{OmniAccount: omni})
}

// DevSignMessage calls dev/sign-message.
func (c *Client) DevSignMessage(ctx context.Context, omni, messageHex string) (*service.DevSignMessageResponse, error) {
	return callTyped[service.DevSignMessageResponse](ctx, c, "dev/sign-message", service.DevSignMessageRequest{OmniAccount: omni, MessageHex: messageHex})
}

// DevSignTypedData calls dev/sign-typed-data.
func (c *Client) DevSignTypedData(ctx context.Context, omni string, typedData json.RawMessage) (*service.DevSignTypedDataResponse, error) {
	return callTyped[service.DevSignTypedDataResponse](ctx, c, "dev/sign-typed-data", service.DevSignTypedDataRequest{OmniAccount: omni, TypedData: typedData})
}

// DevDeriveDevice calls dev/derive-device.
func (c *Client) DevDeriveDevice(ctx context.Context, actorOmni string) (*service.DevDeriveDeviceResponse, error) {
	return callTyped[service.DevDeriveDeviceResponse](ctx, c, "dev/derive-device", service.DevDeriveDeviceRequest{ActorOmni: actorOmni})
}

// DevSignDeviceCapPop calls dev/sign-device-cap-pop.
func (c *Client) DevSignDeviceCapPop(ctx context.Context, p service.DevSignDeviceCapPopRequest) (*service.DevSignDeviceCapPopResponse, error) {
	return callTyped[service.DevSignDeviceCapPopResponse](ctx, c, "dev/sign-device-cap-pop", p)
}

func callTyped[T any](ctx context.Context, c *Client, method string, params any) (*T, error) {
	var r T
	if err := c.Call(ctx, method, params, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

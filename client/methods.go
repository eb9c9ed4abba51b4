package client

import (
	"context"

	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// DeriveAddress calls v1/derive-address; epoch 0 means the current epoch.
func (c *Client) DeriveAddress(ctx context.Context, operatorOmni string, epoch uint32) (*service.DeriveAddressResponse, error) {
	p := service.DeriveAddressRequest{OperatorOmni: operatorOmni}
	if epoch != 0 {
		p.Epoch = &epoch
	}
	var r service.DeriveAddressResponse
	if err := c.Call(ctx, "v1/derive-address", p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DevDeriveAddress calls dev/derive-address.
func (c *Client) DevDeriveAddress(ctx context.Context, omni string) (*service.DevDeriveAddressResponse, error) {
	var r service.DevDeriveAddressResponse
	if err := c.Call(ctx, "dev/derive-address", service.DevDeriveAddressRequest{OmniAccount: omni}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DevSignMessage calls dev/sign-message.
func (c *Client) DevSignMessage(ctx context.Context, omni, messageHex string) (*service.DevSignMessageResponse, error) {
	var r service.DevSignMessageResponse
	if err := c.Call(ctx, "dev/sign-message", service.DevSignMessageRequest{OmniAccount: omni, MessageHex: messageHex}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

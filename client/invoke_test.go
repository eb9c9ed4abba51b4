package client_test

import (
	"context"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
)

// TestInvokeRefusesAReplyKeyMethod: a method whose answer is encrypted to
// a reply key cannot be called without one; Invoke says so before it
// signs anything, rather than send a request the enclave refuses.
func TestInvokeRefusesAReplyKeyMethod(t *testing.T) {
	if _, err := client.Invoke(context.Background(), nil, api.DeriveCredentialKEK, &api.DeriveCredentialKEKRequest{Epoch: 1}); err == nil {
		t.Fatal("Invoke sent derive-cred-kek without a reply key")
	}
}

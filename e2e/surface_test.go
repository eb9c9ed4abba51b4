package e2e

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

func recovers(t *testing.T, hash []byte, sigHex string) string {
	t.Helper()
	pub, err := crypto.SigToPub(hash, unhex(t, sigHex))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(crypto.PubkeyToAddress(*pub).Hex())
}

// TestSigningSurfaceThroughTheStack calls the signing methods through the
// parent and checks each signature recovers to the address derive-address
// gives for the same omni and epoch.
func TestSigningSurfaceThroughTheStack(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	wallet, err := c.DeriveAddress(ctx(t), omniHex, 1)
	if err != nil {
		t.Fatal(err)
	}
	siwe := "app.example wants you to sign in with your Ethereum account:\n" + common.HexToAddress(wallet.Address).Hex() +
		"\n\nSign in\n\nURI: https://app.example/login\nVersion: 1\nChain ID: 1\nNonce: 0123456789\nIssued At: 2020-01-01T00:00:00Z"
	s, err := c.SignSIWE(ctx(t), omniHex, siwe)
	if err != nil {
		t.Fatal(err)
	}
	if recovers(t, unhex(t, s.MessageHash), s.Signature) != wallet.Address {
		t.Fatal("siwe signature does not recover to the wallet")
	}
	var mail struct {
		TypedData json.RawMessage `json:"typed_data"`
	}
	json.Unmarshal(testvectors.Read(t, "eth", "eip712-mail-example.json"), &mail)
	td, err := c.SignTypedData(ctx(t), omniHex, mail.TypedData)
	if err != nil {
		t.Fatal(err)
	}
	if recovers(t, unhex(t, td.Digest), td.Signature) != wallet.Address {
		t.Fatal("typed-data signature does not recover to the wallet")
	}
	// v1/sign/audit-row is not served with the dev surface on: see
	// TestAuditRowSignaturesCannotBeMadeOnTheDevSurface.
	dev, err := c.DevDeriveDevice(ctx(t), omniHex)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.VerifyDeviceSignature(ctx(t), api.VerifyDeviceSignatureRequest{DeviceKeyHash: dev.DeviceKeyHash,
		Payload: hex.EncodeToString(service.PopMessage(unhex(t, dev.DeviceKeyHash))), Sig: dev.PopSig})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Valid || v.Address != dev.Address {
		t.Fatalf("the device's own pop_sig does not verify: %+v", v)
	}
}

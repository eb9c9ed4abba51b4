package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/client"
)

// A broker configures a client with its mTLS certificate, the parent's CA
// and the attestation policy (the AWS root by default, the PCRs of the
// published pcrs.json), then calls typed methods. The first call attests.
func Example() {
	cert, err := tls.LoadX509KeyPair("broker.pem", "broker-key.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	pin := func(h string) []byte { b, _ := hex.DecodeString(h); return b }
	c, err := client.New(client.Config{
		URL:         "https://signer.internal:8443",
		Certificate: cert,
		ServerCAs:   x509.NewCertPool(),
		Policy: attestation.Policy{PCRs: map[int][]byte{
			0: pin("…pcr0 from pcrs.json…"), 1: pin("…pcr1…"), 2: pin("…pcr2…"),
		}},
		SignerID: "prod-signer",
		Clock:    time.Now,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	addr, err := c.DeriveAddress(context.Background(), "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d", 0)
	fmt.Println(addr, err)
}

// An operator's tool checks the enclave's discovery answer (from
// c.OIDCDiscovery) before it uploads the two files it names. The key is
// RFC 7515's appendix A.3 example; its kid is its RFC 7638 thumbprint.
func ExampleCheckOIDCDiscovery() {
	d := &api.OIDCDiscoveryResponse{
		Issuer:        "https://issuer.example/oidc",
		Configuration: []byte(`{"issuer":"https://issuer.example/oidc","jwks_uri":"https://issuer.example/oidc/keys/jwks.json"}`),
		JWKSURI:       "https://issuer.example/oidc/keys/jwks.json",
		JWKS: []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",` +
			`"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","use":"sig","alg":"ES256","kid":"oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"}]}`),
		KeyID: "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U",
		Epoch: 1,
	}
	pub, err := client.CheckOIDCDiscovery(d)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range []client.OIDCFile{pub.Configuration, pub.JWKS} {
		fmt.Println(f.Path, f.URL)
	}
	d.KeyID = "another-kid"
	_, err = client.CheckOIDCDiscovery(d)
	fmt.Println(errors.Is(err, client.ErrOIDCSigningKey))
	// Output:
	// .well-known/openid-configuration https://issuer.example/oidc/.well-known/openid-configuration
	// keys/jwks.json https://issuer.example/oidc/keys/jwks.json
	// true
}

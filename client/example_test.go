package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

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

// Command signerctl is the operator's and caller's tool for nitro-signer:
// verifying attestation documents, calling the signer, and setting up a
// development PKI.
//
//	signerctl attest verify --doc FILE [--root PEM] [--pcr N=HEX]... [--nonce HEX]
//	                        [--at RFC3339] [--max-age DURATION] [--allow-debug]
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: signerctl <command> [flags]

commands:
  attest verify   verify an attestation document and print it as JSON
`

// run is main without the exit, so tests can call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch {
	case len(args) >= 2 && args[0] == "attest" && args[1] == "verify":
		return attestVerify(args[2:], stdin, stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
}

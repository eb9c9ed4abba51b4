// Command signerctl is the operator's and caller's tool for nitro-signer:
// verifying attestation documents, calling the signer, and setting up a
// development PKI.
//
//	signerctl attest verify --doc FILE [--root PEM] [--pcr N=HEX]... [--pcrs pcrs.json] [--nonce HEX]
//	                        [--at RFC3339] [--max-age DURATION] [--allow-debug]
//	signerctl attest fetch  [--out FILE] [client flags]
//	signerctl call METHOD --params JSON [client flags]
//	signerctl eif measure FILE.eif [--manifest --version V --input NAME=FILE...]
//	signerctl bench [--concurrency N] [--duration D] [--rate R | --rate-of-max F] [--http1] [--sign-inline] [--mix M]
//	                [--pid parent=PID --pid enclave=PID] [--out FILE] [client flags]
//	signerctl dev-pki --out DIR
//
// Client flags: --dev DIR fills in every path of a development layout (as
// make run creates it); otherwise --parent, --cert, --key, --server-ca,
// --root, --pcrs or --pcr, --signer-id.
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
  attest fetch    fetch a fresh attestation document from the signer and verify it
  call            call a method and print its verified result
  keys status     show the keyring's epoch, generation and sealing (admin)
  keys rotate     add an epoch from the enclave's randomness, sealed before use (admin)
  keys import     encrypt a master secret to the attested enclave and import it as epoch 1 (admin)
  keys sync       copy the keyring from one attested enclave to another (--from-* flags: the sender)
  keys inspect    print a sealed keyring file's header (generation, epochs, sealer) without opening it
  eif measure     parse an enclave image file and compute its PCRs (or a pcrs.json manifest)
  bench           load the running signer and report throughput, latency and CPU against the crypto floor
  dev-pki         create a development PKI and enclave configuration
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
	case len(args) >= 2 && args[0] == "attest" && args[1] == "fetch":
		return attestFetch(args[2:], stdout, stderr)
	case args[0] == "call":
		return call(args[1:], stdout, stderr)
	case len(args) >= 2 && args[0] == "eif" && args[1] == "measure":
		return eifMeasure(args[2:], stdout, stderr)
	case args[0] == "keys":
		return keysCmd(args[1:], stdout, stderr)
	case args[0] == "bench":
		return bench(args[1:], stdout, stderr)
	case args[0] == "dev-pki":
		return devPKI(args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
}

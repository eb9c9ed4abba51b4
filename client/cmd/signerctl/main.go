// Command signerctl is the operator's and caller's tool for nitro-signer:
// verifying attestation documents, calling the signer, managing its keys,
// measuring enclave images, and setting up a development PKI. It links no
// enclave code; the load generator is a separate binary,
// e2e/cmd/signer-bench.
//
//	signerctl attest verify --doc FILE [--root PEM] [--pcr N=HEX]... [--pcrs pcrs.json] [--nonce HEX]
//	                        [--at RFC3339] [--max-age DURATION] [--allow-debug]
//	signerctl attest fetch  [--out FILE] [client flags]
//	signerctl call METHOD --params JSON [client flags]
//	signerctl keys status   [client flags]
//	signerctl keys rotate   [client flags]
//	signerctl keys import   --secret-file FILE [client flags]
//	signerctl keys sync     [client flags] [--from-parent URL ... --from-dev DIR: the sending enclave's client flags]
//	signerctl keys inspect  FILE
//	signerctl eif measure   FILE.eif [--manifest --version V --input NAME=FILE...]
//	signerctl eif measure   FILE.eif --releases releases.json --version V --not-before T [--not-after T] [--match PCRS]
//	signerctl eif sign      IN.eif --cert CERT.pem --key KEY.pem --out OUT.eif
//	signerctl kms policy    --releases releases.json --role ARN --signer-id ID [--account ID]
//	signerctl kms check     --releases releases.json --role ARN --signer-id ID [--account ID] --policy FILE
//	signerctl oidc publish  --out DIR [--issuer URL] [client flags]
//	signerctl oidc check    --issuer URL [--ca FILE] [client flags]
//	signerctl oidc token    --actor OMNI --audience AUD [--ttl 5m] [client flags]
//	signerctl sts credentials --actor OMNI --role-arn ARN [--ttl 1h] [client flags]
//	signerctl dev-pki       --out DIR [--force]
//	signerctl help [COMMAND]
//
// Every command prints its usage, with every flag, for help, -h or --help
// (signerctl keys rotate --help), to stdout with exit status 0; a wrong
// command line prints one line to stderr and exits 2; a command that ran
// and failed exits 1.
//
// Client flags: --dev DIR fills in every path of a development layout (as
// make run creates it); otherwise --parent, --cert, --key, --server-ca,
// --root, --pcrs or --pcr, --signer-id; and --allow-debug, --max-age,
// --timeout. --parent repeats, once for each replica of a fleet (a DNS
// name with several addresses is a replica per address): a call goes to
// one replica and fails over to another as the client package does
// (docs/protocol.md, "Calling a fleet"); attest fetch and keys status
// answer for the one replica they reached (attest fetch names it), and
// keys sync copies between one replica of each side. With --dev, keys
// and oidc publish and check use the admin certificate, the rest the
// broker's, unless --role says otherwise.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nitro-signer/nitro-signer/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// commands lists every command: its name, the arguments before its flags,
// and what it does.
var commands = []struct{ name, args, summary string }{
	{"attest verify", "", "verify an attestation document and print it as JSON"},
	{"attest fetch", "", "fetch a fresh attestation document from the signer and verify it"},
	{"call", "METHOD", "call a method (such as v1/derive-address) and print its verified result"},
	{"keys status", "", "show the keyring's epoch, generation and sealing (admin)"},
	{"keys rotate", "", "add an epoch from the enclave's randomness, sealed before use (admin)"},
	{"keys import", "", "encrypt a master secret to the attested enclave and import it as epoch 1 (admin)"},
	{"keys sync", "", "copy the keyring from one attested enclave to another (--from-* flags: the sender)"},
	{"keys inspect", "FILE", "print a sealed keyring file's header (generation, epochs, sealer) without opening it"},
	{"eif measure", "FILE.eif", "parse an enclave image file, compute its PCRs and check its signature (or write pcrs.json, or append to releases.json)"},
	{"eif sign", "IN.eif", "sign an enclave image file with a release certificate and key, as nitro-cli build-enclave does"},
	{"kms policy", "", "print the KMS key policy that lets the enclaves of releases.json unseal (one statement per release)"},
	{"kms check", "", "compare a live KMS key policy with releases.json and name every difference (exit 1 if any)"},
	{"oidc publish", "", "fetch the OIDC discovery document and JWKS from the attested enclave, check them and write the files to upload to the issuer"},
	{"oidc check", "", "compare what the issuer serves with what the attested enclave answers, byte for byte, and name every difference (exit 1 if any)"},
	{"oidc token", "", "mint an OIDC ID token for an actor, decrypted with a fresh reply key, and print it as JSON"},
	{"sts credentials", "", "have the enclave exchange its token with STS for an actor's AWS credentials, decrypt them with a fresh reply key and print them as credential_process JSON"},
	{"dev-pki", "", "create a development PKI and enclave configuration"},
}

// command returns the named command of the list, with no flags yet.
func command(name string) *cli.Command {
	for _, c := range commands {
		if c.name == name {
			return cli.New("signerctl "+name, c.args, c.summary)
		}
	}
	return cli.New("signerctl "+name, "", "")
}

// usage lists the commands under prefix ("" for all of them).
func usage(w io.Writer, prefix string) {
	name := strings.TrimSpace("signerctl " + prefix)
	fmt.Fprintf(w, "usage: %s <command> [flags]\n       signerctl help %s<command>   (or %s <command> --help): its usage and flags\n\ncommands:\n",
		name, strings.TrimPrefix(prefix+" ", " "), name)
	for _, c := range commands {
		if prefix == "" || strings.HasPrefix(c.name, prefix+" ") {
			fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
		}
	}
}

// run is main without the exit, so tests can call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr, "")
		return cli.ExitUsage
	}
	if cli.IsHelp(args[0]) {
		if len(args) == 1 {
			usage(stdout, "")
			return cli.ExitOK
		}
		// signerctl help keys rotate is signerctl keys rotate --help.
		return run(append(args[1:len(args):len(args)], "--help"), stdin, stdout, stderr)
	}
	runners := map[string]func([]string) int{
		"attest verify":   func(a []string) int { return attestVerify(a, stdin, stdout, stderr) },
		"attest fetch":    func(a []string) int { return attestFetch(a, stdout, stderr) },
		"call":            func(a []string) int { return call(a, stdout, stderr) },
		"eif measure":     func(a []string) int { return eifMeasure(a, stdout, stderr) },
		"eif sign":        func(a []string) int { return eifSign(a, stdout, stderr) },
		"dev-pki":         func(a []string) int { return devPKI(a, stdout, stderr) },
		"oidc publish":    func(a []string) int { return oidcPublish(a, stdout, stderr) },
		"oidc check":      func(a []string) int { return oidcCheck(a, stdout, stderr) },
		"oidc token":      func(a []string) int { return oidcToken(a, stdout, stderr) },
		"sts credentials": func(a []string) int { return stsCredentials(a, stdout, stderr) },
	}
	for _, sub := range []string{"policy", "check"} {
		runners["kms "+sub] = func(a []string) int { return kmsCmd(append([]string{sub}, a...), stdin, stdout, stderr) }
	}
	for _, sub := range []string{"status", "rotate", "import", "sync", "inspect"} {
		runners["keys "+sub] = func(a []string) int { return keysCmd(append([]string{sub}, a...), stdout, stderr) }
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			if r, ok := runners[c.name]; ok {
				return r(args[len(words):])
			}
		}
	}
	// A group of commands (attest, keys, eif, kms, oidc, sts) without one of them.
	group := args[0]
	var inGroup bool
	for _, c := range commands {
		inGroup = inGroup || strings.HasPrefix(c.name, group+" ")
	}
	switch {
	case !inGroup:
		fmt.Fprintf(stderr, "signerctl: unknown command %q (signerctl help lists the commands)\n", group)
		return cli.ExitUsage
	case len(args) == 1:
		usage(stderr, group)
		return cli.ExitUsage
	case cli.IsHelp(args[1]):
		usage(stdout, group)
		return cli.ExitOK
	}
	fmt.Fprintf(stderr, "signerctl %s: unknown command %q (signerctl %s --help lists the commands)\n", group, args[1], group)
	return cli.ExitUsage
}

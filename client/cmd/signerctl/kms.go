package main

import (
	"fmt"
	"io"
	"os"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

// kmsCmd: signerctl kms policy|check --releases FILE --role ARN
// --signer-id ID [--account ID] [--policy FILE]; args start with the
// subcommand.
func kmsCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sub := args[0]
	cmd := command("kms " + sub)
	fs := cmd.Flags
	var releases, policyPath string
	var o kmspolicy.Options
	fs.StringVar(&releases, "releases", "", "the release manifest `FILE` (releases.json) the policy allows")
	fs.StringVar(&releases, "manifest", "", "the same as --releases `FILE`")
	fs.StringVar(&o.Role, "role", "", "`ARN` of the IAM role the parent instances run as (arn:aws:iam::ACCOUNT:role/NAME)")
	fs.StringVar(&o.SignerID, "signer-id", "", "the deployment's signer_id `ID`, which binds its data keys (the encryption context)")
	fs.StringVar(&o.Account, "account", "", "the 12-digit account `ID` whose administrators manage the key (default: the role's)")
	if sub == "check" {
		fs.StringVar(&policyPath, "policy", "", "the live key policy `FILE` (aws kms get-key-policy --output text --query Policy), or - for stdin")
	}
	if code, ok := cmd.Parse(args[1:], stdout, stderr); !ok {
		return code
	}
	switch {
	case releases == "":
		return cmd.UsageError(stderr, "--releases is required")
	case o.Role == "":
		return cmd.UsageError(stderr, "--role is required")
	case o.SignerID == "":
		return cmd.UsageError(stderr, "--signer-id is required")
	case sub == "check" && policyPath == "":
		return cmd.UsageError(stderr, "--policy is required")
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kms %s: %v\n", sub, err)
		return 1
	}
	b, err := os.ReadFile(releases)
	if err != nil {
		return fail(err)
	}
	rs, err := attestation.ParseReleases(b)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", releases, err))
	}
	want, err := kmspolicy.Render(rs, o)
	if err != nil {
		return fail(err)
	}
	if sub == "policy" {
		out, err := want.Marshal()
		if err != nil {
			return fail(err)
		}
		stdout.Write(out)
		return 0
	}
	var live []byte
	if policyPath == "-" {
		live, err = io.ReadAll(io.LimitReader(stdin, kmspolicy.MaxSize+2))
	} else {
		live, err = os.ReadFile(policyPath)
	}
	if err != nil {
		return fail(err)
	}
	got, err := kmspolicy.Parse(live)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", policyPath, err))
	}
	diffs := kmspolicy.Compare(want, got)
	for _, d := range diffs {
		fmt.Fprintln(stdout, d)
	}
	if len(diffs) > 0 {
		noun := "differences"
		if len(diffs) == 1 {
			noun = "difference"
		}
		fmt.Fprintf(stderr, "kms check: the key policy differs from %s: %d %s\n", releases, len(diffs), noun)
		return 1
	}
	fmt.Fprintf(stdout, "the key policy allows exactly the %d releases of %s\n", len(rs.Releases), releases)
	return 0
}

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/cli"
	"github.com/nitro-signer/nitro-signer/internal/sealfmt"
)

// keysCmd: signerctl keys status|rotate|import|sync|inspect [flags]; args
// start with the subcommand.
func keysCmd(args []string, stdout, stderr io.Writer) int {
	sub := args[0]
	if sub == "inspect" {
		return keysInspect(args[1:], stdout, stderr)
	}
	cmd := command("keys " + sub)
	fs := cmd.Flags
	var cf, from cli.ClientFlags
	cf.RegisterAs(fs, "", "admin")
	secretFile := ""
	switch sub {
	case "status", "rotate":
	case "import":
		fs.StringVar(&secretFile, "secret-file", "", "the 32-byte master secret `FILE`: 64 hex characters, or 32 raw bytes")
	case "sync":
		from.RegisterAs(fs, "from-", "peer")
	default:
		return cmd.UsageError(stderr, "unknown command")
	}
	if code, ok := cmd.Parse(args[1:], stdout, stderr); !ok {
		return code
	}
	c, err := cf.Client()
	if err != nil {
		fmt.Fprintf(stderr, "keys %s: %v\n", sub, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	var result any
	switch sub {
	case "status":
		result, err = c.KeyStatus(ctx)
	case "rotate":
		result, err = c.RotateKeys(ctx)
	case "import":
		var secret []byte
		if secret, err = readSecretFile(secretFile); err != nil {
			fmt.Fprintf(stderr, "keys import: %v\n", err)
			return 2
		}
		result, err = c.ImportSecret(ctx, secret)
		clear(secret)
	case "sync":
		var src *client.Client
		if src, err = from.Client(); err != nil {
			fmt.Fprintf(stderr, "keys sync: the sending enclave (--from-...): %v\n", err)
			return 2
		}
		result, err = client.CopyKeyring(ctx, src, c)
	}
	if err != nil {
		return failed(stderr, "keys "+sub, err)
	}
	out, _ := json.MarshalIndent(result, "", "  ")
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}

// readSecretFile reads a master secret: 32 raw bytes, or 64 hex characters
// (optionally 0x-prefixed, surrounding whitespace ignored). Errors never
// quote the file's content.
func readSecretFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("--secret-file is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if len(b) == api.SecretSize {
		return bytes.Clone(b), nil
	}
	t := bytes.TrimSpace(b)
	t = bytes.TrimPrefix(bytes.TrimPrefix(t, []byte("0x")), []byte("0X"))
	if len(t) != 2*api.SecretSize {
		return nil, fmt.Errorf("%s: want 32 raw bytes or 64 hex characters", path)
	}
	out := make([]byte, api.SecretSize)
	if _, err := hex.Decode(out, t); err != nil {
		clear(out)
		return nil, fmt.Errorf("%s: not hex", path)
	}
	return out, nil
}

// keysInspect prints a sealed keyring file's header — what an operator
// needs to judge a file the enclave skipped — or the structural error. It
// opens nothing: the contents stay sealed.
func keysInspect(args []string, stdout, stderr io.Writer) int {
	cmd := command("keys inspect")
	path, code, ok := cmd.ParseArg(args, stdout, stderr)
	if !ok {
		return code
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "keys inspect: %v\n", err)
		return 1
	}
	h, _, err := sealfmt.Parse(b)
	if err != nil {
		fmt.Fprintf(stderr, "keys inspect: %s: %v\n", path, err)
		return 1
	}
	out, _ := json.MarshalIndent(map[string]any{
		"sealer": h.Sealer, "signer_id": h.SignerID, "generation": h.Generation, "epochs": h.Epochs,
		"sealed_at": time.Unix(h.SealedAt, 0).UTC().Format(time.RFC3339), "wrapped_key_bytes": len(h.WrappedKey),
		"bytes": len(b),
	}, "", "  ")
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}

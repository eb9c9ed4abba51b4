package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/cli"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// call: signerctl call METHOD --params JSON [client flags]
func call(args []string, stdout, stderr io.Writer) int {
	cmd := command("call")
	params := cmd.Flags.String("params", "{}", "method params as `JSON`")
	var cf cli.ClientFlags
	cf.Register(cmd.Flags)
	method, code, ok := cmd.ParseArg(args, stdout, stderr)
	if !ok {
		return code
	}
	var p json.RawMessage
	if err := json.Unmarshal([]byte(*params), &p); err != nil {
		return cmd.UsageError(stderr, "--params: %v", err)
	}
	c, err := cf.Client()
	if err != nil {
		fmt.Fprintf(stderr, "call: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	var result json.RawMessage
	if err := c.Call(ctx, method, p, &result); err != nil {
		return failed(stderr, "call", err)
	}
	out, _ := json.MarshalIndent(result, "", "  ")
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}

// failed prints a command's error, naming the enclave's typed refusal
// when it is one, and returns exit status 1.
func failed(stderr io.Writer, cmd string, err error) int {
	var e *api.Error
	if errors.As(err, &e) {
		fmt.Fprintf(stderr, "%s: refused by the enclave: %s: %s\n", cmd, e.Code, e.Message)
	} else {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	}
	return 1
}

// attestFetch: signerctl attest fetch [--out FILE] [client flags]
func attestFetch(args []string, stdout, stderr io.Writer) int {
	cmd := command("attest fetch")
	out := cmd.Flags.String("out", "", "also write the raw document to `FILE`")
	var cf cli.ClientFlags
	cf.Register(cmd.Flags)
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	c, err := cf.Client()
	if err != nil {
		fmt.Fprintf(stderr, "attest fetch: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	raw, a, err := c.FetchAttestation(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "attest fetch: %v\n", err)
		return 1
	}
	if *out != "" {
		if err := os.WriteFile(*out, raw, 0o644); err != nil {
			fmt.Fprintf(stderr, "attest fetch: %v\n", err)
			return 1
		}
	}
	report := struct {
		Document   documentOut `json:"document"`
		KeyID      string      `json:"kid"`
		SignerID   string      `json:"signer_id"`
		X25519     string      `json:"x25519"`
		ConfigHash string      `json:"config_sha256"`
		Epoch      uint32      `json:"k3_epoch"`
		Replica    string      `json:"replica"`
	}{documentJSON(a.Document), a.KeyID, a.UserData.SignerID, hex.EncodeToString(a.UserData.X25519),
		hex.EncodeToString(a.UserData.ConfigSHA256), a.UserData.Epoch, a.Replica}
	b, _ := json.MarshalIndent(report, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// devPKI: signerctl dev-pki --out DIR [--force]
func devPKI(args []string, stdout, stderr io.Writer) int {
	cmd := command("dev-pki")
	out := cmd.Flags.String("out", "", "`DIR` to write the development PKI to")
	force := cmd.Flags.Bool("force", false, "overwrite an existing PKI")
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	if *out == "" {
		return cmd.UsageError(stderr, "--out is required")
	}
	if _, err := os.Stat(filepath.Join(*out, devpki.EnclaveJSON)); err == nil && !*force {
		fmt.Fprintf(stdout, "dev-pki: %s already holds a PKI (use --force to replace it)\n", *out)
		return 0
	}
	if err := devpki.Generate(*out, time.Now()); err != nil {
		fmt.Fprintf(stderr, "dev-pki: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "dev-pki: wrote a development PKI and enclave configuration to %s\n", *out)
	return 0
}

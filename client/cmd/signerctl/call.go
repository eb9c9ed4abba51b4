package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// call: signerctl call METHOD --params JSON [client flags]
func call(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "usage: signerctl call METHOD --params JSON [flags]   (METHOD like v1/derive-address)")
		return 2
	}
	method := args[0]
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	params := fs.String("params", "{}", "method params as JSON")
	var cf clientFlags
	cf.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var p json.RawMessage
	if err := json.Unmarshal([]byte(*params), &p); err != nil {
		fmt.Fprintf(stderr, "call: --params: %v\n", err)
		return 2
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintf(stderr, "call: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
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
	fs := flag.NewFlagSet("attest fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "also write the raw document here")
	var cf clientFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintf(stderr, "attest fetch: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
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
	}{documentJSON(a.Document), a.KeyID, a.UserData.SignerID, hex.EncodeToString(a.UserData.X25519),
		hex.EncodeToString(a.UserData.ConfigSHA256), a.UserData.Epoch}
	b, _ := json.MarshalIndent(report, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// devPKI: signerctl dev-pki --out DIR [--force]
func devPKI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev-pki", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write the development PKI to")
	force := fs.Bool("force", false, "overwrite an existing PKI")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "dev-pki: --out is required")
		return 2
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

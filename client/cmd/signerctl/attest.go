package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/internal/cli"
)

func attestVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := command("attest verify")
	fs := cmd.Flags
	docPath := fs.String("doc", "", "attestation document `FILE`, or - for stdin (raw CBOR or base64)")
	rootPath := fs.String("root", "", "PEM root `FILE` to trust instead of the AWS Nitro root (development)")
	nonceHex := fs.String("nonce", "", "expected nonce, `HEX`")
	at := fs.String("at", "", "verify as of this `RFC3339` time (archived documents); default now")
	maxAge := fs.Duration("max-age", 0, "refuse documents older than this `DURATION`")
	allowDebug := fs.Bool("allow-debug", false, "accept debug-mode documents (never in production)")
	pcrs := cli.PCRFlags{}
	fs.Var(pcrs, "pcr", "pin PCR N to HEX, `N=HEX` (repeatable)")
	manifest := fs.String("pcrs", "", "pin the PCRs of a pcrs.json manifest `FILE`")
	releases := fs.String("releases", "", "accept any release of the manifest `FILE` (releases.json); the output names the one matched")
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	fail := func(rule string, err error) int {
		fmt.Fprintf(stderr, "attest verify: rule=%s: %v\n", rule, err)
		return 1
	}
	if *docPath == "" {
		return cmd.UsageError(stderr, "--doc is required")
	}
	doc, err := readDocument(*docPath, stdin)
	if err != nil {
		return fail("input", err)
	}
	if *manifest != "" {
		fromFile := map[int][]byte{}
		if err := cli.ReadPCRManifest(*manifest, fromFile); err != nil {
			return fail("input", err)
		}
		for i, v := range fromFile {
			if _, set := pcrs[i]; !set {
				pcrs[i] = v
			}
		}
	}
	policy := attestation.Policy{PCRs: pcrs, MaxAge: *maxAge, AllowDebug: *allowDebug, Clock: time.Now}
	if *releases != "" {
		if policy.Allowed, err = cli.ReadReleases(*releases); err != nil {
			return fail("input", err)
		}
	}
	if *rootPath != "" {
		pemBytes, err := os.ReadFile(*rootPath)
		if err != nil {
			return fail("input", err)
		}
		if policy.Roots, err = attestation.ParseRootsPEM(pemBytes); err != nil {
			return fail("policy", err)
		}
	}
	if *nonceHex != "" {
		if policy.Nonce, err = hex.DecodeString(strings.TrimPrefix(*nonceHex, "0x")); err != nil {
			return fail("input", fmt.Errorf("--nonce: %v", err))
		}
	}
	if *at != "" {
		if policy.At, err = time.Parse(time.RFC3339, *at); err != nil {
			return fail("input", fmt.Errorf("--at: %v", err))
		}
	}
	d, err := attestation.Verify(doc, policy)
	if err != nil {
		return fail(attestation.Rule(err), err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(documentJSON(d)); err != nil {
		return fail("output", err)
	}
	return 0
}

// readDocument reads raw CBOR or base64 (standard or URL alphabet) from a
// file or stdin, bounded by the largest document the verifier accepts.
func readDocument(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	// Base64 of a maximal document is 4/3 larger, plus line breaks.
	limit := int64(attestation.MaxDocumentSize*2 + 1)
	b, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) == limit {
		return nil, fmt.Errorf("document larger than %d bytes", limit-1)
	}
	text := bytes.Join(bytes.Fields(b), nil)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(string(text)); err == nil && len(text) > 0 {
			return d, nil
		}
	}
	return b, nil
}

type documentOut struct {
	ModuleID    string            `json:"module_id"`
	Timestamp   time.Time         `json:"timestamp"`
	Digest      string            `json:"digest"`
	PCRs        map[string]string `json:"pcrs"`
	PublicKey   *string           `json:"public_key"`
	UserData    *string           `json:"user_data"`
	Nonce       *string           `json:"nonce"`
	Debug       bool              `json:"debug"`
	Certificate string            `json:"certificate_subject"`
	Chain       []string          `json:"chain"`
	// Release is the releases.json version matched (--releases).
	Release string `json:"release,omitempty"`
}

func documentJSON(d *attestation.Document) documentOut {
	out := documentOut{
		ModuleID: d.ModuleID, Timestamp: d.Timestamp, Digest: d.Digest, Debug: d.Debug, Release: d.Measurement,
		PCRs: map[string]string{}, Certificate: d.Certificate.Subject.String(),
		PublicKey: optionalHex(d.PublicKey), UserData: optionalHex(d.UserData), Nonce: optionalHex(d.Nonce),
	}
	for i, v := range d.PCRs {
		out.PCRs[strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	for _, c := range d.Chain {
		out.Chain = append(out.Chain, c.Subject.String())
	}
	return out
}

func optionalHex(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hex.EncodeToString(b)
	return &s
}

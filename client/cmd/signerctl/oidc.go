package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/atomicfile"
	"github.com/nitro-signer/nitro-signer/internal/cli"
)

// maxServed bounds a file oidc check reads from the issuer: far above a
// discovery document or a JWKS of many epochs.
const maxServed = 1 << 20

// oidcReport is what oidc publish and oidc check print.
type oidcReport struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	KeyID   string   `json:"kid"`
	KeyIDs  []string `json:"kids"`
	Epoch   uint32   `json:"k3_epoch"`
	// Files are the files written (publish) or the URLs compared (check).
	Files []string `json:"files"`
}

// discover attests, calls v1/oidc/discovery (the client verifies the
// answer against the attested enclave key) and checks the answer in
// itself and against the issuer the operator expects ("" for any).
func discover(cf *cli.ClientFlags, issuer string) (*client.OIDCPublication, error) {
	c, err := cf.Client()
	if err != nil {
		return nil, &usageError{err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	d, err := c.OIDCDiscovery(ctx)
	if err != nil {
		return nil, err
	}
	return checkDiscovery(d, issuer)
}

// checkDiscovery is discover's check of the answer.
func checkDiscovery(d *api.OIDCDiscoveryResponse, issuer string) (*client.OIDCPublication, error) {
	pub, err := client.CheckOIDCDiscovery(d)
	if err != nil {
		return nil, err
	}
	if issuer != "" && issuer != pub.Issuer {
		return nil, fmt.Errorf("the enclave's issuer is %q, not %q", pub.Issuer, issuer)
	}
	return pub, nil
}

// usageError is a client flag error: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// oidcPublish: signerctl oidc publish --out DIR [--issuer URL] [client flags]
func oidcPublish(args []string, stdout, stderr io.Writer) int {
	cmd := command("oidc publish")
	out := cmd.Flags.String("out", "", "`DIR` to write the files to upload to the issuer's root into")
	issuer := cmd.Flags.String("issuer", "", "the issuer `URL` the enclave must be configured with (default: any)")
	var cf cli.ClientFlags
	cf.RegisterAs(cmd.Flags, "", "admin")
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	if *out == "" {
		return cmd.UsageError(stderr, "--out is required")
	}
	pub, err := discover(&cf, *issuer)
	if err == nil {
		var files []string
		if files, err = writePublication(*out, pub); err == nil {
			printJSON(stdout, reportOf(pub, files))
			return cli.ExitOK
		}
	}
	return oidcFailed(stderr, "oidc publish", err)
}

// oidcFailed reports err: a flag error exits 2, anything else 1.
func oidcFailed(stderr io.Writer, name string, err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return cli.ExitUsage
	}
	return failed(stderr, name, err)
}

func reportOf(pub *client.OIDCPublication, files []string) oidcReport {
	return oidcReport{Issuer: pub.Issuer, JWKSURI: pub.JWKS.URL, KeyID: pub.KeyID, KeyIDs: pub.KeyIDs, Epoch: pub.Epoch, Files: files}
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}

// writePublication writes the configuration and the JWKS under dir, each
// at its path relative to the issuer, atomically, and returns the paths.
func writePublication(dir string, pub *client.OIDCPublication) ([]string, error) {
	var written []string
	for _, f := range []client.OIDCFile{pub.Configuration, pub.JWKS} {
		rel := filepath.FromSlash(f.Path)
		if !filepath.IsLocal(rel) {
			return written, fmt.Errorf("%q is not a path under %s", f.Path, dir)
		}
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return written, err
		}
		if err := atomicfile.Write(path, f.Data, 0o644); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// oidcCheck: signerctl oidc check --issuer URL [--ca FILE] [client flags]
func oidcCheck(args []string, stdout, stderr io.Writer) int {
	cmd := command("oidc check")
	issuer := cmd.Flags.String("issuer", "", "the issuer `URL` whose served files to compare with the enclave's")
	ca := cmd.Flags.String("ca", "", "`FILE` (PEM) with the CAs of the issuer's TLS certificate (default: the system's roots)")
	var cf cli.ClientFlags
	cf.RegisterAs(cmd.Flags, "", "admin")
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	if *issuer == "" {
		return cmd.UsageError(stderr, "--issuer is required")
	}
	hc, err := servedClient(*ca)
	if err != nil {
		return cmd.UsageError(stderr, "--ca: %v", err)
	}
	pub, err := discover(&cf, *issuer)
	if err != nil {
		return oidcFailed(stderr, "oidc check", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	diffs := compareServed(ctx, hc, pub)
	if len(diffs) == 0 {
		printJSON(stdout, reportOf(pub, []string{pub.Configuration.URL, pub.JWKS.URL}))
		return cli.ExitOK
	}
	for _, d := range diffs {
		fmt.Fprintln(stdout, d)
	}
	noun := "differences"
	if len(diffs) == 1 {
		noun = "difference"
	}
	fmt.Fprintf(stderr, "oidc check: %s serves other files than the enclave attests: %d %s\n", pub.Issuer, len(diffs), noun)
	return cli.ExitFail
}

// servedClient is the HTTPS client that fetches the issuer's files: the
// system's roots or those of caFile, and no redirect followed (IAM
// fetches the URLs themselves).
func servedClient(caFile string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no certificate", caFile)
		}
	}
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// compareServed fetches the publication's two files from where they are
// served and names every difference from the enclave's bytes.
func compareServed(ctx context.Context, hc *http.Client, pub *client.OIDCPublication) []string {
	var diffs []string
	for _, f := range []client.OIDCFile{pub.Configuration, pub.JWKS} {
		served, err := fetchServed(ctx, hc, f.URL)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: %v", f.URL, err))
			continue
		}
		diffs = append(diffs, compareFile(f.URL, served, f.Data)...)
	}
	return diffs
}

// fetchServed GETs url: 200 and at most maxServed bytes.
func fetchServed(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("served with status %s, want 200", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxServed+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxServed {
		return nil, fmt.Errorf("served over %d bytes", maxServed)
	}
	return b, nil
}

// compareFile names how the served bytes differ from the attested ones:
// byte for byte, then as JSON, member by member.
func compareFile(name string, served, attested []byte) []string {
	if bytes.Equal(served, attested) {
		return nil
	}
	at := 0
	for at < len(served) && at < len(attested) && served[at] == attested[at] {
		at++
	}
	diffs := []string{fmt.Sprintf("%s: %d bytes served, %d attested, first different at byte %d", name, len(served), len(attested), at)}
	var s, a any
	if err := json.Unmarshal(served, &s); err != nil {
		return append(diffs, fmt.Sprintf("%s: the served file is not JSON: %v", name, err))
	}
	if err := json.Unmarshal(attested, &a); err != nil {
		return append(diffs, fmt.Sprintf("%s: the attested file is not JSON: %v", name, err))
	}
	members := jsonDiff("", s, a)
	if len(members) == 0 {
		return append(diffs, fmt.Sprintf("%s: the same JSON, written otherwise (spacing, order or escapes): upload the attested bytes", name))
	}
	for _, m := range members {
		diffs = append(diffs, name+": "+m)
	}
	return diffs
}

// jsonDiff names the differences between two decoded JSON values, by
// path ("keys[0].kid").
// plainName: letters, digits and the punctuation JSON member names of
// these files use, nothing that a terminal takes as a command.
func plainName(n string) bool {
	for _, r := range n {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return n != ""
}

func jsonDiff(path string, served, attested any) []string {
	show := func(v any) string {
		b, _ := json.Marshal(v)
		if len(b) > 120 {
			return string(b[:117]) + "..."
		}
		return string(b)
	}
	at := path
	if at == "" {
		at = "the document"
	}
	switch a := attested.(type) {
	case map[string]any:
		s, ok := served.(map[string]any)
		if !ok {
			break
		}
		var names []string
		for n := range a {
			names = append(names, n)
		}
		for n := range s {
			if _, ok := a[n]; !ok {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		var diffs []string
		for _, n := range names {
			// A member's name is the served file's text: quoted unless it
			// is plain, so the issuer host cannot write to the terminal.
			if !plainName(n) {
				n = strconv.Quote(n)
			}
			p := n
			if path != "" {
				p = path + "." + n
			}
			sv, inS := s[n]
			av, inA := a[n]
			switch {
			case !inS:
				diffs = append(diffs, fmt.Sprintf("%s: missing (attested %s)", p, show(av)))
			case !inA:
				diffs = append(diffs, fmt.Sprintf("%s: served %s, not attested", p, show(sv)))
			default:
				diffs = append(diffs, jsonDiff(p, sv, av)...)
			}
		}
		return diffs
	case []any:
		s, ok := served.([]any)
		if !ok {
			break
		}
		var diffs []string
		if len(s) != len(a) {
			diffs = append(diffs, fmt.Sprintf("%s: %d elements served, %d attested", at, len(s), len(a)))
		}
		for i := range min(len(s), len(a)) {
			diffs = append(diffs, jsonDiff(fmt.Sprintf("%s[%d]", path, i), s[i], a[i])...)
		}
		return diffs
	}
	if reflect.DeepEqual(served, attested) {
		return nil
	}
	return []string{fmt.Sprintf("%s: served %s, attested %s", at, show(served), show(attested))}
}

// oidcToken: signerctl oidc token --actor OMNI --audience AUD [--ttl D] [client flags]
func oidcToken(args []string, stdout, stderr io.Writer) int {
	cmd := command("oidc token")
	actor := cmd.Flags.String("actor", "", "the actor omni `OMNI` (64 hex characters) the token is for: its sub")
	audience := cmd.Flags.String("audience", "", "the token's audience `AUD` (one of the enclave's configured audiences)")
	ttl := cmd.Flags.Duration("ttl", 5*time.Minute, "the token's lifetime, whole seconds within the enclave's bounds")
	var cf cli.ClientFlags
	cf.Register(cmd.Flags)
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	switch {
	case *actor == "":
		return cmd.UsageError(stderr, "--actor is required")
	case *audience == "":
		return cmd.UsageError(stderr, "--audience is required")
	case *ttl <= 0 || *ttl%time.Second != 0:
		return cmd.UsageError(stderr, "--ttl %v: want a positive whole number of seconds", *ttl)
	}
	c, err := cf.Client()
	if err != nil {
		fmt.Fprintf(stderr, "oidc token: %v\n", err)
		return cli.ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	tok, err := c.OIDCToken(ctx, *actor, *audience, *ttl)
	if err != nil {
		return failed(stderr, "oidc token", err)
	}
	printJSON(stdout, struct {
		Token   string `json:"token"`
		KeyID   string `json:"kid"`
		Expires int64  `json:"exp"`
		Epoch   uint32 `json:"k3_epoch"`
	}{tok.Token, tok.KeyID, tok.Expires.Unix(), tok.Epoch})
	return cli.ExitOK
}

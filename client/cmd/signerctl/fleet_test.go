package main

import (
	"bytes"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// devLayout writes a development PKI and an attestation root under a
// temporary directory and returns the client flags that use them.
func devLayout(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
		t.Fatal(err)
	}
	a, err := issuer.NewAuthority(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Root.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pin := strings.Repeat("00", 48)
	return []string{"--dev", dir, "--root", root, "--pcr", "0=" + pin, "--pcr", "1=" + pin, "--pcr", "2=" + pin, "--timeout", "10s"}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSeveralParents: --parent repeats, each a replica the call may try;
// a bad one is a command-line error.
func TestSeveralParents(t *testing.T) {
	flags := devLayout(t)
	a, b := "https://"+closedPort(t), "https://"+closedPort(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{name: "every_replica_tried", args: []string{"call", "v1/derive-address", "--parent", a, "--parent", b},
			code: 1, stderr: []string{"after 2 attempts", "connection refused"}},
		{name: "bad_parent_not_https", args: []string{"keys", "status", "--parent", a, "--parent", "http://127.0.0.1:1"},
			code: 2, stderr: []string{`endpoint "http://127.0.0.1:1": want https://`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append(tc.args, flags...), nil, &stdout, &stderr)
			if code != tc.code || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and one line", code, stdout.String(), stderr.String(), tc.code)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Fatalf("stderr %q, want %q", stderr.String(), want)
				}
			}
		})
	}
}

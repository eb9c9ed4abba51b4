package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// stsConfig is the development configuration with an sts member.
func stsConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := devpki.Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, devpki.EnclaveJSON))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	roles := m["roles"].(map[string]any)
	roles["worker"] = append(roles["worker"].([]any), "v1/sts-credentials")
	m["sts"] = map[string]any{"endpoint": "https://sts.us-east-1.amazonaws.com", "ca_pem": m["caller_ca_pem"], "audience": "signer-sts-credentials",
		"roles": []any{map[string]any{"arn": "arn:aws:iam::123456789012:role/r", "callers": []string{"worker"},
			"session_policy": map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/{{actor_omni}}/*"}}}}}}
	b, _ = json.Marshal(m)
	c, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An sts member needs the egress; without one the method does not exist.
func TestOpenSTS(t *testing.T) {
	cfg := stsConfig(t)
	if _, err := openSTS(&Config{}, cfg); err == nil || !strings.Contains(err.Error(), "--egress") {
		t.Fatalf("sts without --egress: %v", err)
	}
	ex, err := openSTS(&Config{Egress: "unix:///tmp/egress.sock"}, cfg)
	if err != nil || ex == nil {
		t.Fatalf("sts with --egress: %v, %v", ex, err)
	}
	cfg.STS = nil
	if ex, err := openSTS(&Config{}, cfg); err != nil || ex != nil {
		t.Fatalf("no sts member: %v, %v", ex, err)
	}
}

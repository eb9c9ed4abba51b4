package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/server"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

func devConfig(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := devpki.Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, devpki.EnclaveJSON))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func edit(t *testing.T, b []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseDevelopmentConfig(t *testing.T) {
	b := devConfig(t)
	c, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.SignerID != devpki.SignerID || c.Window != time.Minute || !c.DevSurface {
		t.Fatalf("config: %+v", c)
	}
	if !c.Allowed("broker", "dev/sign-message") || c.Allowed("worker", "dev/sign-message") || c.Allowed("nobody", "v1/derive-address") {
		t.Fatal("role table wrong")
	}
	if err := c.CheckMethods(server.AllMethods()); err != nil {
		t.Fatal(err)
	}
	c2, _ := config.Parse(append(b, ' '))
	if c2.Hash == c.Hash {
		t.Fatal("the hash does not cover the file's bytes")
	}
}

// callerCA returns a configuration's caller CA, a PEM certificate to reuse.
func callerCA(t *testing.T, b []byte) string {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m["caller_ca_pem"].(string)
}

func TestParseRefuses(t *testing.T) {
	b := devConfig(t)
	ca := callerCA(t, b)
	tests := map[string][]byte{
		"bad_unknown_field": edit(t, b, func(m map[string]any) { m["surprise"] = true }),
		"bad_signer_id":     edit(t, b, func(m map[string]any) { m["signer_id"] = "Has Spaces" }),
		"bad_trust_domain":  edit(t, b, func(m map[string]any) { m["trust_domain"] = "" }),
		"bad_no_ca":         edit(t, b, func(m map[string]any) { m["caller_ca_pem"] = "" }),
		"bad_ca_garbage": edit(t, b, func(m map[string]any) {
			m["caller_ca_pem"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		}),
		"bad_window_too_short":  edit(t, b, func(m map[string]any) { m["replay_window"] = "10ms" }),
		"bad_window_unparsable": edit(t, b, func(m map[string]any) { m["replay_window"] = "soon" }),
		"bad_no_roles":          edit(t, b, func(m map[string]any) { m["roles"] = map[string]any{} }),
		"bad_role_name":         edit(t, b, func(m map[string]any) { m["roles"] = map[string]any{"Admin!": []string{}} }),
		"bad_method_twice": edit(t, b, func(m map[string]any) {
			m["roles"] = map[string]any{"a": []string{"v1/derive-address", "v1/derive-address"}}
		}),
		"bad_in_flight": edit(t, b, func(m map[string]any) { m["limits"] = map[string]any{"in_flight": -1} }),
		"bad_caller_share_above_the_roles_part": edit(t, b, func(m map[string]any) {
			m["limits"] = map[string]any{"replay_entries": 4096, "replay_entries_per_caller": 4096}
		}),
		"bad_replay_entries_too_many": edit(t, b, func(m map[string]any) { m["limits"] = map[string]any{"replay_entries": 1 << 25} }),
		"bad_duplicate_key":           []byte(strings.Replace(string(b), `"signer_id"`, `"signer_id": "x", "signer_id"`, 1)),
		"bad_not_json":                []byte("signer_id = x"),
		"bad_sealing_kind":            edit(t, b, func(m map[string]any) { m["sealing"] = map[string]any{"kind": "tpm"} }),
		"bad_kms_key_id": edit(t, b, func(m map[string]any) {
			m["sealing"] = kmsSealing(ca, func(k map[string]any) { k["key_id"] = "my key" })
		}),
		"bad_kms_region": edit(t, b, func(m map[string]any) { m["sealing"] = kmsSealing(ca, func(k map[string]any) { k["region"] = "moon" }) }),
		"bad_kms_http_endpoint": edit(t, b, func(m map[string]any) {
			m["sealing"] = kmsSealing(ca, func(k map[string]any) { k["endpoint"] = "http://kms.us-east-1.amazonaws.com" })
		}),
		"bad_kms_endpoint_path": edit(t, b, func(m map[string]any) {
			m["sealing"] = kmsSealing(ca, func(k map[string]any) { k["endpoint"] = "https://kms.example/x" })
		}),
		"bad_kms_no_roots":      edit(t, b, func(m map[string]any) { m["sealing"] = kmsSealing(ca, func(k map[string]any) { k["ca_pem"] = "" }) }),
		"bad_kms_unknown_field": edit(t, b, func(m map[string]any) { m["sealing"] = kmsSealing(ca, func(k map[string]any) { k["role"] = "x" }) }),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := config.Parse(in); err == nil {
				t.Fatal("Parse accepted it")
			}
		})
	}
	c, err := config.Parse(edit(t, b, func(m map[string]any) { m["roles"] = map[string]any{"a": []string{"v1/nope"}} }))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckMethods(server.AllMethods()); err == nil {
		t.Fatal("an unknown method in a role passed CheckMethods")
	}
}

// kmsSealing is a valid KMS sealing section, changed by mutate.
func kmsSealing(ca string, mutate func(map[string]any)) map[string]any {
	k := map[string]any{
		"key_id": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"region": "us-east-1",
		"ca_pem": ca,
	}
	mutate(k)
	return map[string]any{"kind": "kms", "kms": k}
}

func TestParseSealing(t *testing.T) {
	b := devConfig(t)
	ca := callerCA(t, b)
	c, err := config.Parse(edit(t, b, func(m map[string]any) { m["sealing"] = kmsSealing(ca, func(map[string]any) {}) }))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sealing.Kind != config.SealingKMS || c.Sealing.KMS.URL.String() != "https://kms.us-east-1.amazonaws.com:443" || c.Sealing.KMS.Roots == nil {
		t.Fatalf("kms sealing: %+v", c.Sealing)
	}
	c, err = config.Parse(edit(t, b, func(m map[string]any) { delete(m, "sealing") }))
	if err != nil || c.Sealing.Kind != config.SealingNone {
		t.Fatalf("absent sealing: %+v, %v", c.Sealing, err)
	}
}

func FuzzParse(f *testing.F) {
	dev := devConfig(f)
	f.Add(dev)
	f.Add([]byte(`{"signer_id":"x"}`))
	// With peers: a releases.json document inside the configuration.
	f.Add(append([]byte(`{"peers":{"releases":[{"version":"v1","pcr0":"`+hex96(0xa)+`","pcr1":"`+hex96(1)+`","pcr2":"`+hex96(2)+
		`","pcr8":"`+hex96(8)+`","eif_sha256":"`+strings.Repeat("e", 64)+`","not_before":"2026-01-01T00:00:00Z","match":["pcr0","pcr8"]}]},`), dev[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse(b)
		if err == nil && (c.CallerPool == nil || c.Window <= 0) {
			t.Fatal("accepted an unusable configuration")
		}
		if err == nil && (c.Peers == nil) != (c.PeerReleases == nil) {
			t.Fatalf("peers %q parsed into %+v", c.Peers, c.PeerReleases)
		}
	})
}

package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/client/devpki"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/enclave/service"
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
	if err := c.CheckMethods(service.AllMethods()); err != nil {
		t.Fatal(err)
	}
	c2, _ := config.Parse(append(b, ' '))
	if c2.Hash == c.Hash {
		t.Fatal("the hash does not cover the file's bytes")
	}
}

func TestParseRefuses(t *testing.T) {
	b := devConfig(t)
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
		"bad_in_flight":     edit(t, b, func(m map[string]any) { m["limits"] = map[string]any{"in_flight": -1} }),
		"bad_duplicate_key": []byte(strings.Replace(string(b), `"signer_id"`, `"signer_id": "x", "signer_id"`, 1)),
		"bad_not_json":      []byte("signer_id = x"),
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
	if err := c.CheckMethods(service.AllMethods()); err == nil {
		t.Fatal("an unknown method in a role passed CheckMethods")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(devConfig(f))
	f.Add([]byte(`{"signer_id":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse(b)
		if err == nil && (c.CallerPool == nil || c.Window <= 0) {
			t.Fatal("accepted an unusable configuration")
		}
	})
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte{0xc3}, 32)
	hexForm := strings.Repeat("c3", 32)
	for name, tc := range map[string]struct {
		content string
		ok      bool
	}{
		"hex_with_newline": {hexForm + "\n", true},
		"hex_0x_upper":     {"0x" + strings.ToUpper(hexForm), true},
		"raw_32_bytes":     {string(want), true},
		"short_hex":        {hexForm[:62], false},
		"long_hex":         {hexForm + "00", false},
		"not_hex":          {strings.Repeat("zz", 32), false},
		"empty":            {"", false},
		"raw_31_bytes":     {string(want[:31]), false},
		"hex_inner_space":  {hexForm[:32] + " " + hexForm[32:], false},
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(tc.content), 0o600)
		got, err := readSecretFile(path)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if tc.ok && !bytes.Equal(got, want) {
			t.Errorf("%s: read %x", name, got)
		}
		if err != nil && tc.content != "" && strings.Contains(err.Error(), tc.content[:8]) {
			t.Errorf("%s: the error quotes the file: %v", name, err)
		}
	}
	if _, err := readSecretFile(""); err == nil {
		t.Error("no path accepted")
	}
}

func TestKeysInspect(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "keyring-00000000000000000002.sealed")
	os.WriteFile(bad, []byte("NSKR\x01\x00\x00\x00\x05short"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"keys", "inspect", bad}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "malformed sealed keyring") {
		t.Fatalf("inspect of a truncated file: exit %d, %q", code, errb.String())
	}
	if code := run([]string{"keys", "inspect"}, nil, &out, &errb); code != 2 {
		t.Fatalf("inspect without a file: exit %d", code)
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSTSCommandLines: sts credentials' usage errors, exit 2 and one
// line, before anything is called; an unreachable signer exits 1.
func TestSTSCommandLines(t *testing.T) {
	flags := devLayout(t)
	actor := strings.Repeat("ab", 32)
	const role = "arn:aws:iam::123456789012:role/r"
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"bad_without_actor", []string{"sts", "credentials", "--role-arn", role}, "--actor is required"},
		{"bad_without_role", []string{"sts", "credentials", "--actor", actor}, "--role-arn is required"},
		{"bad_ttl_fraction", []string{"sts", "credentials", "--actor", actor, "--role-arn", role, "--ttl", "1500ms"}, "--ttl 1.5s"},
		{"bad_ttl_negative", []string{"sts", "credentials", "--actor", actor, "--role-arn", role, "--ttl", "-1h"}, "--ttl -1h0m0s"},
		{"bad_without_client_flags", []string{"sts", "credentials", "--actor", actor, "--role-arn", role}, "--cert, --key, --server-ca and --signer-id are required"},
		{"bad_group_alone", []string{"sts"}, "sts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, nil, &stdout, &stderr)
			if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 with %q", code, stdout.String(), stderr.String(), tc.stderr)
			}
		})
	}
	t.Run("unreachable_signer_exits_1", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"sts", "credentials", "--actor", actor, "--role-arn", role, "--parent", "https://" + closedPort(t)}, flags...)
		if code := run(args, nil, &stdout, &stderr); code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "connection refused") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	})
}

package deptest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/deptest"
)

const m = "github.com/nitro-signer/nitro-signer"

var (
	// A caller links the contract and the verifiers it needs, none of the
	// enclave's code or its heavy dependencies.
	callerRule = deptest.Rule{Forbidden: []string{
		m + "/enclave", "github.com/ethereum/go-ethereum", "github.com/go-webauthn", "github.com/google/go-tpm",
	}}
	// The parent decides nothing: it links neither the enclave's code nor
	// the request and response envelopes (go-jose), nor a test server.
	parentRule = deptest.Rule{Forbidden: []string{
		m + "/enclave", m + "/envelope", "github.com/go-jose", m + "/internal/kmstest", m + "/internal/s3test", m + "/e2e",
	}}
	// The production enclave links no simulator, development sealer or
	// development PKI.
	productionRule = deptest.Rule{Forbidden: []string{
		m + "/enclave/nsm/nsmsim", m + "/enclave/seal/devseal", m + "/internal/devpki", m + "/attestation/issuer",
		m + "/internal/kmstest", m + "/e2e",
	}}
	// Only the enclave, and the load tool that times its cryptography,
	// link the enclave's code.
	zoneRule = deptest.Rule{Forbidden: []string{m + "/enclave"}}
	// What the zones share depends on none of them.
	sharedRule = deptest.Rule{Forbidden: []string{m + "/enclave", m + "/parent", m + "/client"}}
	// The contract is the standard library's only.
	apiRule = deptest.Rule{StandardOnly: true}
)

// TestSharedCodeLinksNoZone: every package under internal/ but the
// command-line half of the caller's tools (internal/cli, shared by
// signerctl and signer-bench, which builds clients) links none of the
// enclave, the parent or the client.
func TestSharedCodeLinksNoZone(t *testing.T) {
	pkgs, err := deptest.Packages(m + "/internal/...")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range pkgs {
		if p == m+"/internal/cli" {
			continue
		}
		bad, err := deptest.Check(p, "", "", sharedRule)
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Errorf("%s links %v", p, bad)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d packages under internal/: the listing is wrong", checked)
	}
}

// TestOnlyTheEnclaveLinksEnclaveCode: outside enclave/ only e2e (whose load
// tool times the enclave's own cryptography in process) links a package
// under enclave/.
func TestOnlyTheEnclaveLinksEnclaveCode(t *testing.T) {
	pkgs, err := deptest.Packages(m + "/...")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range pkgs {
		if strings.HasPrefix(p, m+"/enclave/") || strings.HasPrefix(p, m+"/e2e/") {
			continue
		}
		bad, err := deptest.Check(p, "", "", zoneRule)
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Errorf("%s links %v", p, bad)
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("checked %d packages: the listing is wrong", checked)
	}
	// The control: the load tool does link enclave code.
	if bad, err := deptest.Check(m+"/e2e/cmd/signer-bench", "", "", zoneRule); err != nil || len(bad) == 0 {
		t.Fatalf("the rule does not catch signer-bench's enclave packages: %v, %v", bad, err)
	}
}

// TestDependencies holds each part of the tree to what it may link. Each
// rule comes with a control: a build that breaks it, which the rule must
// catch, so a rule that can no longer fail fails here.
func TestDependencies(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkg  string
		tags string
		rule deptest.Rule
		// catch: the build is a control, and the rule must name this
		// dependency of it.
		catch string
		// goos is the system built for ("" is the host's).
		goos string
	}{
		{"client", m + "/client", "", callerRule, "", ""},
		{"client_hello_program", m + "/internal/deptest/testdata/hello", "", callerRule, "", ""},
		{"signerctl", m + "/client/cmd/signerctl", "", callerRule, "", ""},
		{"signerctl_darwin", m + "/client/cmd/signerctl", "", callerRule, "", "darwin"},
		{"signerctl_windows", m + "/client/cmd/signerctl", "", callerRule, "", "windows"},
		{"caller_command_line", m + "/internal/cli", "", callerRule, "", ""},
		{"control_client_rule_catches_the_enclave_service", m + "/enclave/service", "", callerRule, "github.com/ethereum/go-ethereum", ""},
		{"parent", m + "/parent/...", "", parentRule, "", ""},
		{"control_parent_rule_catches_the_envelope", m + "/envelope", "", parentRule, "github.com/go-jose/go-jose/v4", ""},
		{"control_parent_rule_catches_the_s3_test_server", m + "/internal/s3test", "", parentRule, m + "/internal/s3test", ""},
		{"production_enclave", m + "/enclave/cmd/enclave", "", productionRule, "", ""},
		{"control_production_rule_catches_the_simulator_build", m + "/enclave/cmd/enclave", "nsmsim", productionRule, m + "/enclave/nsm/nsmsim", ""},
		{"control_production_rule_catches_the_development_pki", m + "/client/cmd/signerctl", "", productionRule, m + "/internal/devpki", ""},
		{"control_production_rule_catches_the_local_kms", m + "/internal/kmstest", "", productionRule, m + "/internal/kmstest", ""},
		{"shared_envelope", m + "/envelope", "", sharedRule, "", ""},
		{"shared_attestation", m + "/attestation/...", "", sharedRule, "", ""},
		{"control_shared_rule_catches_a_zone", m + "/enclave/cmd/enclave", "", sharedRule, m + "/enclave/server", ""},
		{"api", m + "/api", "", apiRule, "", ""},
		{"control_api_rule_catches_the_envelope", m + "/envelope", "", apiRule, "github.com/fxamacker/cbor/v2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad, err := deptest.Check(tc.pkg, tc.tags, tc.goos, tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.catch != "" && !slices.Contains(bad, tc.catch):
				t.Fatalf("the rule does not catch %s in the control %s (tags %q), which links it: it found %v", tc.catch, tc.pkg, tc.tags, bad)
			case tc.catch == "" && len(bad) > 0:
				t.Fatalf("%s (tags %q) links what it must not: %v", tc.pkg, tc.tags, bad)
			}
		})
	}
}

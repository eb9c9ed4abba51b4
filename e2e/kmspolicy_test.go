package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/kmstest"
)

// The key policy signerctl renders from releases.json is the local KMS's:
// the enclave of the release seals and, after SIGKILL, unseals through it;
// signerctl kms check finds the live policy equivalent; a policy drifted
// to another PCR1 is named by kms check, and the enclave stays sealed
// until the manifest's policy is put back.
// probeLayout is a fresh development layout whose enclave started once
// without keys: the development root and the image's PCRs are written,
// for a key policy to pin.
func probeLayout(t *testing.T) (string, *env) {
	t.Helper()
	dir := t.TempDir()
	if err := devpki.Generate(filepath.Join(dir, "pki"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "nsm"), 0o700); err != nil {
		t.Fatal(err)
	}
	probe := &env{t: t, dir: dir, name: "probe-", sock: filepath.Join(dir, "probe.sock")}
	probe.startEnclave("--no-keys")
	probe.enclave.stop()
	return dir, probe
}

func TestKeysUnsealUnderTheRenderedKeyPolicy(t *testing.T) {
	dir, probe := probeLayout(t)

	cfgPath := filepath.Join(dir, "pki", devpki.EnclaveJSON)
	b, _ := os.ReadFile(cfgPath)
	var cfg map[string]any
	json.Unmarshal(b, &cfg)
	signerID, _ := cfg["signer_id"].(string)

	// releases.json: the development image, and a release of another
	// build that is allowed too.
	releases := filepath.Join(dir, "releases.json")
	other := strings.Repeat("5e", 48)
	os.WriteFile(releases, []byte(fmt.Sprintf(`{"releases": [
 {"version": "dev", "pcr0": "%s", "pcr1": "%s", "pcr2": "%s", "eif_sha256": "%s", "not_before": "2020-01-01T00:00:00Z"},
 {"version": "next", "pcr0": "%s", "pcr1": "%s", "pcr2": "%s", "eif_sha256": "%s", "not_before": "2020-01-01T00:00:00Z"}]}`,
		hex.EncodeToString(probe.pcrs[0]), hex.EncodeToString(probe.pcrs[1]), hex.EncodeToString(probe.pcrs[2]), strings.Repeat("e", 64),
		other, hex.EncodeToString(probe.pcrs[1]), other, strings.Repeat("e", 64))), 0o644)
	const (
		keyARN = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
		role   = "arn:aws:iam::111122223333:role/signer-role" // the role StartIMDS serves
	)
	signerctl := func(stdin []byte, args ...string) (stdout, stderr string, exit int) {
		cmd := execSignerctl(append(args, "--releases", releases, "--role", role, "--signer-id", signerID)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Run()
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}
	rendered, stderr, exit := signerctl(nil, "kms", "policy")
	if exit != 0 {
		t.Fatalf("kms policy: exit %d: %s", exit, stderr)
	}
	policy := kmstest.Policy{KeyID: keyARN, Roots: probe.devRoots, KeyPolicy: []byte(rendered), Region: "us-east-1",
		AccessKeyID: "ASIAE2ELOCALKMS00002", SecretAccessKey: "e2e-secret-access-key-policy-0123456789",
		SessionToken: "e2e-session-token-policy-fedcba9876543210"}
	kms, err := kmstest.Start(policy)
	if err != nil {
		t.Fatal(err)
	}
	defer kms.Close()
	imds := kmstest.StartIMDS(policy)
	defer imds.Close()
	editConfig(t, cfgPath, func(cfg map[string]any) { cfg["sealing"] = kmsSealing(kms, keyARN) })

	e := newKMSEnv(t, dir, "", "", kms, imds)
	e.waitReady()
	if _, err := e.client("admin").RotateKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	want := e.keyView(e.client("broker"), 2)
	e.enclave.kill()
	e.startEnclave()
	e.waitReady()
	sameView(t, "unsealed under the rendered policy after SIGKILL", e.keyView(e.client("broker"), 2), want)
	if kms.Calls("GenerateDataKey") != 2 || kms.Calls("Decrypt") < 1 {
		t.Fatalf("calls: %d GenerateDataKey, %d Decrypt", kms.Calls("GenerateDataKey"), kms.Calls("Decrypt"))
	}

	// get-key-policy | kms check: equivalent.
	if out, stderr, exit := signerctl(kms.KeyPolicy(), "kms", "check", "--policy", "-"); exit != 0 || !strings.Contains(out, "exactly the 2 releases") {
		t.Fatalf("kms check of the live policy: exit %d\n%s%s", exit, out, stderr)
	}
	// Someone puts a policy whose PCR1 for "dev" is another kernel's.
	drifted := strings.Replace(rendered, hex.EncodeToString(probe.pcrs[1]), strings.Repeat("77", 48), 1)
	if err := kms.PutKeyPolicy([]byte(drifted)); err != nil {
		t.Fatal(err)
	}
	out, _, exit := signerctl(kms.KeyPolicy(), "kms", "check", "--policy", "-")
	if line := `release "dev": kms:RecipientAttestation:PCR1 is ` + strings.Repeat("77", 48) + `, want ` + hex.EncodeToString(probe.pcrs[1]) + "\n"; exit != 1 || out != line {
		t.Fatalf("kms check of the drifted policy: exit %d\n%s\nwant\n%s", exit, out, line)
	}
	e.enclave.kill()
	e.startEnclave()
	_, reason := e.readiness(func(ready bool, reason string) bool {
		return !ready && strings.Contains(reason, "AccessDeniedException")
	}, 20*time.Second)
	t.Logf("under the drifted policy: %s", reason)
	e.enclave.waitLine(t, "kms:RecipientAttestation:PCR1 does not hold", 5*time.Second)
	// The manifest's policy put back: the enclave retries and unseals.
	if err := kms.PutKeyPolicy([]byte(rendered)); err != nil {
		t.Fatal(err)
	}
	e.waitReady()
	sameView(t, "after the policy was put back", e.keyView(e.client("broker"), 2), want)
	e.assertNoSecrets(append(collectKEKs(want), e.devSecret(), []byte(policy.SecretAccessKey), []byte(policy.SessionToken)))
}

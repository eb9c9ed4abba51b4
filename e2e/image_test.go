package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// simulatorMarkers are package paths that exist only in development builds.
var simulatorMarkers = []string{
	"nitro-signer/enclave/nsm/nsmsim",
	"nitro-signer/attestation/issuer",
	"nitro-signer/enclave/seal/devseal",
}

// TestProductionEnclaveHasNoSimulator inspects the production enclave binary
// (built as Dockerfile.enclave builds it: no tags) and fails if any
// simulator code is in it. The development binary is the control: the same
// search must find the markers there.
func TestProductionEnclaveHasNoSimulator(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	prod, err := os.ReadFile(filepath.Join(binDir, "enclave-production"))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := os.ReadFile(filepath.Join(binDir, "enclave"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range simulatorMarkers {
		if !bytes.Contains(dev, []byte(m)) {
			t.Fatalf("control failed: the development binary lacks %q, so the search proves nothing", m)
		}
		if bytes.Contains(prod, []byte(m)) {
			t.Errorf("the production enclave contains %q", m)
		}
	}
}

// TestDockerfilePinsItsBaseImages checks every FROM of Dockerfile.enclave is
// scratch, a previous stage, or GO_IMAGE, which make image accepts only
// with a digest.
func TestDockerfilePinsItsBaseImages(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile.enclave")
	if err != nil {
		t.Fatal(err)
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(b), -1)
	if len(froms) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(froms))
	}
	for _, f := range froms {
		switch img := f[1]; {
		case img == "scratch", img == "${GO_IMAGE}", strings.Contains(img, "@sha256:"):
		default:
			t.Errorf("FROM %s is not pinned by digest", img)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(mk, []byte(`@sha256:[0-9a-f]{64}$$`)) {
		t.Error("make image does not insist on a digest-pinned GO_IMAGE")
	}
}

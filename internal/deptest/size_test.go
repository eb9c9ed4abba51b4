package deptest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/deptest"
)

// maxClientOverHTTPS bounds what the client adds to a program beyond the
// standard library's HTTPS client: attestation (CBOR, COSE), envelopes
// (JOSE) and the contract. Measured when the client stopped linking the
// enclave (go1.26.10, linux/amd64, -trimpath): the hello program 10.6 MB,
// the floor 8.5 MB, 2.1 MB above it; before, the hello program was 13.5 MB,
// 5.0 MB above it.
const maxClientOverHTTPS = 3 << 20

// TestClientAddsLittleToAnHTTPSProgram builds the hello program and the
// bare HTTPS program and holds the difference under maxClientOverHTTPS;
// the control, the hello program linking the enclave's methods too, must
// exceed it.
func TestClientAddsLittleToAnHTTPSProgram(t *testing.T) {
	dir := t.TempDir()
	size := func(pkg string) int64 {
		t.Helper()
		out := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command(deptest.GoTool(), "build", "-trimpath", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	hello, floor := size("./testdata/hello"), size("./testdata/httpsfloor")
	t.Logf("hello %d bytes, HTTPS floor %d bytes, the client adds %d", hello, floor, hello-floor)
	if hello-floor > maxClientOverHTTPS {
		t.Fatalf("the client adds %d bytes to an HTTPS program, more than %d: what does it link now? (go list -deps ./internal/deptest/testdata/hello)", hello-floor, maxClientOverHTTPS)
	}
	if heavy := size("./testdata/heavyhello"); heavy-floor <= maxClientOverHTTPS {
		t.Fatalf("the control, linking the enclave's methods, adds only %d bytes: the bound cannot fail", heavy-floor)
	} else {
		t.Logf("control: with the enclave's methods linked, %d bytes, %d above the floor", heavy, heavy-floor)
	}
}

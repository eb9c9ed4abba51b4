// Package testvectors locates the third-party test vectors shared beside the
// repository (../shared/vectors, or $SIGNER_VECTORS). Tests use the vectors as
// they are; nothing from them is copied into the project.
//
// Where the vectors are absent a test skips with a message saying so, except
// when CI=true: there the absence fails the run.
package testvectors

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the vectors directory, or skips (fails under CI=true) when it
// is absent.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("SIGNER_VECTORS")
	if dir == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			tb.Fatal("testvectors: cannot locate the source tree")
		}
		// file is <repo>/attestation/testvectors/testvectors.go.
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "vectors")
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testvectors: %s is absent and CI=true: the shared vectors are required", dir)
		}
		tb.Skipf("testvectors: %s is absent (set SIGNER_VECTORS); skipping", dir)
	}
	return dir
}

// Read returns the bytes of a file under the vectors directory, e.g.
// Read(t, "attestation", "qos-2022-07-06-nondebug.cbor").
func Read(tb testing.TB, parts ...string) []byte {
	tb.Helper()
	path := filepath.Join(append([]string{Dir(tb)}, parts...)...)
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("testvectors: %v", err)
	}
	return b
}

// Glob returns the vector files matching pattern under the vectors directory.
func Glob(tb testing.TB, pattern ...string) []string {
	tb.Helper()
	matches, err := filepath.Glob(filepath.Join(append([]string{Dir(tb)}, pattern...)...))
	if err != nil {
		tb.Fatalf("testvectors: %v", err)
	}
	return matches
}

package tagcheck_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/tagcheck"
)

// simTag is the simulated NSM's build tag.
const simTag = "nsmsim"

// TestNoTestHidesBehindTheSimulatorTag: every test compiles without
// -tags nsmsim, so `go test ./...` runs it or reports it skipped; none
// vanishes from the untagged run.
func TestNoTestHidesBehindTheSimulatorTag(t *testing.T) {
	hidden, err := tagcheck.HiddenTests(moduleRoot(t), simTag)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hidden {
		t.Errorf("%s builds only with -tags %s, so the untagged run drops it without a word; "+
			"put only the simulator's construction behind the tag and skip without it (as enclave/custody/sim_*_test.go do)", h, simTag)
	}
}

// TestHiddenTestsAreFound is the control: a tree with tests behind the tag
// among helpers behind it, untagged tests, tests of another opt-in tag and
// a testdata directory; exactly the hidden tests are reported.
func TestHiddenTestsAreFound(t *testing.T) {
	got, err := tagcheck.HiddenTests(filepath.Join("testdata", "tree"), simTag)
	if err != nil {
		t.Fatal(err)
	}
	want := []tagcheck.Hidden{
		{File: "a/hidden_test.go", Func: "BenchmarkHidden"},
		{File: "a/hidden_test.go", Func: "Example"},
		{File: "a/hidden_test.go", Func: "FuzzHidden"},
		{File: "a/hidden_test.go", Func: "TestHidden"},
		{File: "a/hidden_test.go", Func: "Test_underscore"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("hidden tests:\n got %v\nwant %v", got, want)
	}
}

func TestBadTreeIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name, root string
	}{
		{"bad_missing_root", filepath.Join(t.TempDir(), "absent")},
		{"bad_unparsable_file", unparsable(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := tagcheck.HiddenTests(tc.root, simTag); err == nil {
				t.Fatalf("no error, found %v", h)
			}
		})
	}
}

func unparsable(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("//go:build nsmsim\n\npackage x\nfunc TestX(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/devpki"
	"github.com/nitro-signer/nitro-signer/internal/procs"
)

// The warnings both binaries log at start without the settings.
const (
	sysmonWarning = "sysmon thread deep-sleeps"
	pagesWarning  = "gives heap pages back with MADV_DONTNEED"
)

// TestLaunchersSetGODEBUG: every place the project launches the binaries
// sets procs.GODEBUG: the enclave image's environment (so it is measured),
// and make run and make bench (the parent's systemd unit: eif's
// TestParentUnitSetsGODEBUG).
func TestLaunchersSetGODEBUG(t *testing.T) {
	want := "GODEBUG=" + procs.GODEBUG
	df, err := os.ReadFile("../Dockerfile.enclave")
	if err != nil {
		t.Fatal(err)
	}
	stages := regexp.MustCompile(`(?m)^FROM\s`).Split(string(df), -1)
	final := stages[len(stages)-1]
	if !regexp.MustCompile(`(?m)^ENV\s+` + regexp.QuoteMeta(want) + `$`).MatchString(final) {
		t.Errorf("the enclave image's final stage does not set ENV %s", want)
	}
	if n := len(regexp.MustCompile(`GODEBUG`).FindAllString(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(final, ""), -1)); n != 1 {
		t.Errorf("the enclave image's final stage names GODEBUG %d times outside comments, want the one ENV", n)
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "RUN_ENV := GODEBUG='$(if $(GODEBUG),$(GODEBUG)$(comma))"+procs.GODEBUG+"'") {
		t.Errorf("the Makefile's RUN_ENV does not end GODEBUG with %s", procs.GODEBUG)
	}
	// Every line of the Makefile that starts a server or the bench.
	launches := regexp.MustCompile(`(?m)^\t.*\$\(BIN\)/(enclave|parent|signer-bench) --.*$`).FindAllString(string(mk), -1)
	if len(launches) < 7 {
		t.Fatalf("found %d launches of the binaries in the Makefile, want make run's two and make bench's five", len(launches))
	}
	for _, l := range launches {
		if !strings.Contains(l, "$(RUN_ENV) $(BIN)/") {
			t.Errorf("a Makefile launch without $(RUN_ENV): %s", strings.TrimSpace(l))
		}
	}
}

// TestBinariesWarnWithoutGODEBUG: started as deployed, neither binary
// warns; started without the settings, each says so at start, once for
// each.
func TestBinariesWarnWithoutGODEBUG(t *testing.T) {
	e := newEnv(t)
	for name, p := range map[string]*proc{"enclave": e.enclave, "parent": e.parentP} {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.Contains(l, sysmonWarning) || strings.Contains(l, pagesWarning) {
				t.Errorf("the %s, started as deployed (with %s), warned: %s", name, procs.GODEBUG, l)
			}
		}
		p.mu.Unlock()
	}

	off := []string{"GODEBUG=schedtrace=0,madvdontneed=1"}
	if err := os.MkdirAll(filepath.Join(e.dir, "nsm-off"), 0o700); err != nil {
		t.Fatal(err)
	}
	enclave := startEnv(t, filepath.Join(e.dir, "off-enclave.log"), "enclave", off,
		"--config", filepath.Join(e.dir, "pki", devpki.EnclaveJSON), "--listen", "unix://"+filepath.Join(e.dir, "off.sock"),
		"--state-dir", filepath.Join(e.dir, "nsm-off"))
	enclave.waitLine(t, sysmonWarning, 20*time.Second)
	enclave.waitLine(t, pagesWarning, 5*time.Second)
	e.parentEnv = off
	e.launchParent("unix://" + filepath.Join(e.dir, "off.sock"))
	e.parentP.waitLine(t, sysmonWarning, 5*time.Second)
	e.parentP.waitLine(t, pagesWarning, 5*time.Second)
}

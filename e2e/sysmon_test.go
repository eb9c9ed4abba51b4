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

// sysmonWarning is what both binaries log at start without the setting.
const sysmonWarning = "sysmon thread deep-sleeps"

// TestLaunchersKeepSysmonAwake: every place the project launches the
// binaries sets procs.SysmonAwake: the enclave image's environment (so it
// is measured), and make run and make bench (the parent's systemd unit:
// eif's TestParentUnitKeepsSysmonAwake).
func TestLaunchersKeepSysmonAwake(t *testing.T) {
	want := "GODEBUG=" + procs.SysmonAwake
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
	if !strings.Contains(string(mk), "RUN_ENV := GODEBUG='$(if $(GODEBUG),$(GODEBUG)$(comma))"+procs.SysmonAwake+"'") {
		t.Errorf("the Makefile's RUN_ENV does not end GODEBUG with %s", procs.SysmonAwake)
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

// TestBinariesWarnWhenSysmonDeepSleeps: started as deployed, neither
// binary warns; started without the setting, each says so at start.
func TestBinariesWarnWhenSysmonDeepSleeps(t *testing.T) {
	e := newEnv(t)
	for name, p := range map[string]*proc{"enclave": e.enclave, "parent": e.parentP} {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.Contains(l, sysmonWarning) {
				t.Errorf("the %s, started as deployed (with %s), warned: %s", name, procs.SysmonAwake, l)
			}
		}
		p.mu.Unlock()
	}

	off := []string{"GODEBUG=schedtrace=0"}
	if err := os.MkdirAll(filepath.Join(e.dir, "nsm-off"), 0o700); err != nil {
		t.Fatal(err)
	}
	enclave := startEnv(t, filepath.Join(e.dir, "off-enclave.log"), "enclave", off,
		"--config", filepath.Join(e.dir, "pki", devpki.EnclaveJSON), "--listen", "unix://"+filepath.Join(e.dir, "off.sock"),
		"--state-dir", filepath.Join(e.dir, "nsm-off"))
	enclave.waitLine(t, sysmonWarning, 20*time.Second)
	e.parentEnv = off
	e.launchParent("unix://" + filepath.Join(e.dir, "off.sock"))
	e.parentP.waitLine(t, sysmonWarning, 5*time.Second)
}

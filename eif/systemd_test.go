package eif_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/procs"
)

// unit reads a systemd unit file's Key=Value lines (continuations joined).
func unit(t *testing.T, name string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	var line string
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		line += l
		if strings.HasSuffix(line, "\\") {
			line = strings.TrimSuffix(line, "\\")
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = append(out[k], v)
		}
		line = ""
	}
	return out
}

// TestEnclaveUnitRestartsADeadEnclave: the enclave unit stays active only
// while its enclave runs and is restarted, for ever, when it stops; the
// parent unit is not stopped with it.
func TestEnclaveUnitRestartsADeadEnclave(t *testing.T) {
	enclave := unit(t, "nitro-signer-enclave.service")
	for _, tt := range []struct{ key, want string }{
		{"Type", "exec"},
		{"Restart", "always"},
		{"StartLimitIntervalSec", "0"},
		{"ExecStart", "/usr/local/bin/nitro-signer-enclave-run"},
	} {
		if got := enclave[tt.key]; len(got) != 1 || got[0] != tt.want {
			t.Errorf("enclave unit %s=%v, want %s", tt.key, got, tt.want)
		}
	}
	if _, ok := enclave["RemainAfterExit"]; ok {
		t.Error("enclave unit has RemainAfterExit: a dead enclave would look active")
	}
	parent := unit(t, "nitro-signer-parent.service")
	for _, k := range []string{"BindsTo", "Requires", "PartOf"} {
		for _, v := range parent[k] {
			if strings.Contains(v, "nitro-signer-enclave") {
				t.Errorf("parent unit %s=%s: a restarting enclave would take the parent, and its state store, down", k, v)
			}
		}
	}
	for _, name := range []string{"nitro-signer-enclave.service", "nitro-signer-parent.service", "nitro-signer-enclave-run"} {
		b, _ := os.ReadFile(filepath.Join("systemd", name))
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "#") && strings.Contains(l, "--debug-mode") {
				t.Errorf("%s runs the enclave in debug mode: %s", name, l)
			}
		}
	}
}

// fakeNitroCLI writes a nitro-cli that logs its arguments and answers
// describe-enclaves as the real one does (pretty-printed JSON) while the
// file "running" exists; run-enclave creates it unless "refuse" exists,
// terminate-enclave removes it.
func fakeNitroCLI(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	script := `#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/calls"
case "$1" in
run-enclave) [ -e "$d/refuse" ] && exit 1; touch "$d/running" ;;
terminate-enclave) rm -f "$d/running" ;;
describe-enclaves)
	if [ -e "$d/running" ]; then
		printf '[\n  {\n    "EnclaveName": "nitro-signer",\n    "EnclaveID": "i-0abc-enc0123",\n    "ProcessID": 4242,\n    "EnclaveCID": 16,\n    "NumberOfCPUs": 2,\n    "CPUIDs": [\n      1,\n      3\n    ],\n    "MemoryMiB": 1024,\n    "State": "RUNNING",\n    "Flags": "NONE"\n  }\n]\n'
	else
		printf '[]\n'
	fi ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "nitro-cli"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startRunScript(t *testing.T, cli string) (*exec.Cmd, chan error) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	cmd := exec.Command(filepath.Join("systemd", "nitro-signer-enclave-run"))
	cmd.Env = append(os.Environ(), "NITRO_CLI="+filepath.Join(cli, "nitro-cli"), "NITRO_SIGNER_CHECK_SECONDS=0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, done
}

func waitExit(t *testing.T, done chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("the script still runs after %s", within)
		return nil
	}
}

func calls(t *testing.T, dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "calls"))
	return string(b)
}

// TestEnclaveRunScriptExitsWhenTheEnclaveDies runs the unit's script against
// a fake nitro-cli: it starts the enclave with the unit's CID and no debug
// mode, stays while the enclave runs, and exits non-zero (so systemd
// restarts it) once describe-enclaves no longer lists it; a refused start
// fails at once; a stop terminates the enclave.
func TestEnclaveRunScriptExitsWhenTheEnclaveDies(t *testing.T) {
	t.Run("bad_enclave_died", func(t *testing.T) {
		cli := fakeNitroCLI(t)
		_, done := startRunScript(t, cli)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(calls(t, cli), "describe-enclaves") {
			if time.Now().After(deadline) {
				t.Fatalf("never checked the enclave; calls:\n%s", calls(t, cli))
			}
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case err := <-done:
			t.Fatalf("the script exited (%v) while the enclave runs", err)
		case <-time.After(500 * time.Millisecond):
		}
		os.Remove(filepath.Join(cli, "running")) // the enclave exits
		var exit *exec.ExitError
		if err := waitExit(t, done, 5*time.Second); !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit %v, want status 1", err)
		}
		got := calls(t, cli)
		if !strings.HasPrefix(got, "terminate-enclave --enclave-name nitro-signer\nrun-enclave --eif-path /opt/nitro-signer/nitro-signer.eif --cpu-count 2 --memory 1024 --enclave-cid 16 --enclave-name nitro-signer\n") {
			t.Fatalf("calls:\n%s", got)
		}
	})
	t.Run("bad_start_refused", func(t *testing.T) {
		cli := fakeNitroCLI(t)
		os.WriteFile(filepath.Join(cli, "refuse"), nil, 0o600)
		_, done := startRunScript(t, cli)
		var exit *exec.ExitError
		if err := waitExit(t, done, 5*time.Second); !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit %v, want status 1", err)
		}
	})
	t.Run("stopped_by_systemd", func(t *testing.T) {
		cli := fakeNitroCLI(t)
		cmd, done := startRunScript(t, cli)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(calls(t, cli), "describe-enclaves") {
			if time.Now().After(deadline) {
				t.Fatal("never checked the enclave")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := waitExit(t, done, 5*time.Second); err != nil {
			t.Fatalf("exit %v on SIGTERM, want 0", err)
		}
		if _, err := os.Stat(filepath.Join(cli, "running")); err == nil {
			t.Fatalf("the enclave was left running; calls:\n%s", calls(t, cli))
		}
	})
}

// TestParentUnitSetsGODEBUG: the parent runs with procs.GODEBUG and no
// other.
func TestParentUnitSetsGODEBUG(t *testing.T) {
	want := "GODEBUG=" + procs.GODEBUG
	var godebug []string
	for _, e := range unit(t, "nitro-signer-parent.service")["Environment"] {
		if strings.HasPrefix(e, "GODEBUG=") {
			godebug = append(godebug, e)
		}
	}
	if len(godebug) != 1 || godebug[0] != want {
		t.Fatalf("parent unit GODEBUG %v, want exactly Environment=%s", godebug, want)
	}
}

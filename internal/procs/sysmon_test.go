package procs_test

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/procs"
)

func TestSchedtrace(t *testing.T) {
	for _, tc := range []struct {
		name, godebug string
		want          int32
	}{
		{"unset", "", 0},
		{"the_setting_is_the_longest_interval", procs.SysmonAwake, math.MaxInt32},
		{"among_other_keys", "http2client=0," + procs.SysmonAwake + ",madvdontneed=1", math.MaxInt32},
		{"zero_turns_it_off", "schedtrace=0", 0},
		{"the_last_one_wins", procs.SysmonAwake + ",schedtrace=0", 0},
		{"the_last_one_wins_the_other_way", "schedtrace=0," + procs.SysmonAwake, math.MaxInt32},
		{"a_malformed_value_leaves_the_one_before", procs.SysmonAwake + ",schedtrace=often", math.MaxInt32},
		{"past_32_bits_is_malformed", "schedtrace=2147483648", 0},
		{"a_key_that_only_starts_with_it_is_another_key", "schedtracex=5", 0},
		{"a_field_without_a_value_is_skipped", "schedtrace", 0},
		{"negative_is_off", "schedtrace=-1", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := procs.Schedtrace(tc.godebug); got != tc.want {
				t.Fatalf("Schedtrace(%q) = %d, want %d", tc.godebug, got, tc.want)
			}
		})
	}
}

func TestWarnIfSysmonSleeps(t *testing.T) {
	for _, tc := range []struct {
		name, godebug string
		warn          bool
	}{
		{"unset_warns", "", true},
		{"off_warns", "schedtrace=0", true},
		{"set_is_quiet", "madvdontneed=1," + procs.SysmonAwake, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GODEBUG", tc.godebug)
			var buf bytes.Buffer
			procs.WarnIfSysmonSleeps(slog.New(slog.NewTextHandler(&buf, nil)))
			if got := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), procs.SysmonAwake); got != tc.warn {
				t.Fatalf("GODEBUG=%q: warned %v, want %v; logged %q", tc.godebug, got, tc.warn, buf.String())
			}
		})
	}
}

// TestRuntimeTakesTheSetting: the runtime this binary was built with
// parses SysmonAwake as a schedtrace interval above zero. What the
// interval changes inside the runtime cannot be read from outside, but a
// fatal panic prints a scheduler summary ("SCHED") exactly when it is
// above zero; a child without the setting is the control.
func TestRuntimeTakesTheSetting(t *testing.T) {
	if os.Getenv("PROCS_TEST_PANIC") == "1" {
		panic("procs test: a fatal panic on purpose")
	}
	for _, tc := range []struct {
		godebug string
		sched   bool
	}{
		{procs.SysmonAwake, true},
		{"schedtrace=0", false},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestRuntimeTakesTheSetting$")
		cmd.Env = append(os.Environ(), "PROCS_TEST_PANIC=1", "GODEBUG="+tc.godebug)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "a fatal panic on purpose") {
			t.Fatalf("GODEBUG=%s: the child did not panic (err %v): %s", tc.godebug, err, out)
		}
		if got := strings.Contains(string(out), "SCHED "); got != tc.sched {
			t.Errorf("GODEBUG=%s: scheduler summary printed %v, want %v: %s", tc.godebug, got, tc.sched, out)
		}
	}
}

// FuzzSchedtrace: any GODEBUG value parses without a panic; one with no
// schedtrace field is 0; and a well-formed schedtrace appended after it
// wins, as the runtime's last good value does.
func FuzzSchedtrace(f *testing.F) {
	for _, s := range []string{"", procs.SysmonAwake, "schedtrace=0,madvdontneed=1", "schedtrace=x", "a=b,,=,schedtrace=", "schedtrace=-2147483648"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, godebug string) {
		n := procs.Schedtrace(godebug)
		if !strings.Contains(godebug, "schedtrace=") && n != 0 {
			t.Fatalf("Schedtrace(%q) = %d without a schedtrace field", godebug, n)
		}
		if got := procs.Schedtrace(godebug + ",schedtrace=7"); got != 7 {
			t.Fatalf("Schedtrace(%q + \",schedtrace=7\") = %d, want the last one, 7", godebug, got)
		}
	})
}

package procs_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
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

func TestMadvdontneed(t *testing.T) {
	dflt := madvdontneedDefault()
	for _, tc := range []struct {
		name, godebug string
		want          int32
	}{
		{"unset_is_the_default", "", dflt},
		{"the_setting_is_zero", procs.PagesFreedLazily, 0},
		{"in_the_binaries_godebug", procs.GODEBUG, 0},
		{"among_other_keys", "http2client=0," + procs.PagesFreedLazily + ",schedtrace=5", 0},
		{"the_last_one_wins", procs.PagesFreedLazily + ",madvdontneed=1", 1},
		{"the_last_one_wins_the_other_way", "madvdontneed=1," + procs.PagesFreedLazily, 0},
		{"a_malformed_value_leaves_the_one_before", procs.PagesFreedLazily + ",madvdontneed=no", 0},
		{"a_malformed_value_alone_leaves_the_default", "madvdontneed=no", dflt},
		{"past_32_bits_is_malformed", "madvdontneed=4294967296", dflt},
		{"a_key_that_only_starts_with_it_is_another_key", "madvdontneedx=0", dflt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := procs.Madvdontneed(tc.godebug); got != tc.want {
				t.Fatalf("Madvdontneed(%q) = %d, want %d", tc.godebug, got, tc.want)
			}
		})
	}
}

func TestWarnGODEBUG(t *testing.T) {
	const sysmon, pages = "sysmon thread deep-sleeps", "MADV_DONTNEED"
	for _, tc := range []struct {
		name, godebug string
		warn          []string
	}{
		{"unset_warns_twice", "", []string{sysmon, pages}},
		{"sysmon_off_warns", "schedtrace=0," + procs.PagesFreedLazily, []string{sysmon}},
		{"pages_dontneed_warns", procs.SysmonAwake + ",madvdontneed=1", []string{pages}},
		{"only_sysmon_set_warns_of_pages", procs.SysmonAwake, []string{pages}},
		{"the_binaries_godebug_is_quiet", procs.GODEBUG, nil},
		{"with_other_keys_is_quiet", "http2client=0," + procs.GODEBUG, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GODEBUG", tc.godebug)
			var buf bytes.Buffer
			procs.WarnGODEBUG(slog.New(slog.NewTextHandler(&buf, nil)))
			out := buf.String()
			if n := strings.Count(out, "level=WARN"); n != len(tc.warn) {
				t.Fatalf("GODEBUG=%q: %d warnings, want %d: %q", tc.godebug, n, len(tc.warn), out)
			}
			for _, w := range tc.warn {
				if !strings.Contains(out, w) || !strings.Contains(out, "GODEBUG="+procs.GODEBUG) {
					t.Fatalf("GODEBUG=%q: no warning of %q naming the setting: %q", tc.godebug, w, out)
				}
			}
		})
	}
}

// TestRuntimeFreesPagesLazily: the runtime this binary was built with
// gives pages back with MADV_FREE under PagesFreedLazily. A child that
// frees a large heap and returns it all to the kernel finds it counted as
// LazyFree in its smaps_rollup (pages given back, still mapped until the
// kernel wants them) exactly when it runs with the setting; a child
// without it (MADV_DONTNEED) is the control.
func TestRuntimeFreesPagesLazily(t *testing.T) {
	if os.Getenv("PROCS_TEST_FREE") == "1" {
		heap := make([][]byte, 0, 64)
		for range 64 {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			heap = append(heap, b)
		}
		runtime.KeepAlive(heap)
		heap = nil
		debug.FreeOSMemory()
		rollup, err := os.ReadFile("/proc/self/smaps_rollup")
		if err != nil {
			fmt.Println("no smaps_rollup:", err)
			os.Exit(3)
		}
		for line := range strings.Lines(string(rollup)) {
			if strings.HasPrefix(line, "LazyFree:") {
				fmt.Print("ROLLUP ", line)
			}
		}
		os.Exit(0)
	}
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skipf("no /proc/self/smaps_rollup to read LazyFree from: %v", err)
	}
	for _, tc := range []struct {
		godebug string
		lazy    bool
	}{
		{procs.GODEBUG, true},
		{procs.SysmonAwake + ",madvdontneed=1", false},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestRuntimeFreesPagesLazily$")
		cmd.Env = append(os.Environ(), "PROCS_TEST_FREE=1", "GODEBUG="+tc.godebug)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GODEBUG=%s: the child failed (%v): %s", tc.godebug, err, out)
		}
		var kb int64 = -1
		for line := range strings.Lines(string(out)) {
			if rest, ok := strings.CutPrefix(line, "ROLLUP LazyFree:"); ok {
				kb, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					t.Fatalf("GODEBUG=%s: LazyFree line %q", tc.godebug, line)
				}
			}
		}
		if kb < 0 {
			t.Fatalf("GODEBUG=%s: the child printed no LazyFree: %s", tc.godebug, out)
		}
		t.Logf("GODEBUG=%s: LazyFree %d kB", tc.godebug, kb)
		// 64 MiB was freed; with MADV_FREE most of it is LazyFree until the
		// kernel reclaims it, with MADV_DONTNEED none of it is.
		if got := kb > 16<<10; got != tc.lazy {
			t.Errorf("GODEBUG=%s: LazyFree %d kB after freeing 64 MiB, lazily freed %v, want %v", tc.godebug, kb, got, tc.lazy)
		}
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
// schedtrace field is 0 and one with no madvdontneed field is 1; and a
// well-formed setting appended after it wins, as the runtime's last good
// value does.
func FuzzSchedtrace(f *testing.F) {
	for _, s := range []string{"", procs.SysmonAwake, "schedtrace=0,madvdontneed=1", procs.GODEBUG, "madvdontneed=-0", "schedtrace=x", "a=b,,=,schedtrace=", "schedtrace=-2147483648"} {
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
		m := procs.Madvdontneed(godebug)
		if !strings.Contains(godebug, "madvdontneed=") && m != madvdontneedDefault() {
			t.Fatalf("Madvdontneed(%q) = %d without a madvdontneed field, want the default %d", godebug, m, madvdontneedDefault())
		}
		if got := procs.Madvdontneed(godebug + "," + procs.PagesFreedLazily); got != 0 {
			t.Fatalf("Madvdontneed(%q + %q) = %d, want the last one, 0", godebug, procs.PagesFreedLazily, got)
		}
	})
}

// madvdontneedDefault is the runtime's madvdontneed when GODEBUG sets none:
// 1 on Linux (runtime1.go), 0 elsewhere.
func madvdontneedDefault() int32 {
	if runtime.GOOS == "linux" {
		return 1
	}
	return 0
}

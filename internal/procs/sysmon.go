package procs

import (
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// SysmonAwake is the GODEBUG setting under which the signer's binaries
// should run: it keeps the runtime's sysmon thread out of deep sleep.
//
// Sysmon watches the scheduler from its own thread. When every P is idle
// it sleeps until woken; the next system call wakes it and it starts
// again at its shortest poll, 20 µs, backing off towards 10 ms only after
// a run of polls that found nothing to do. A process below saturation has
// every P idle between requests, so each request that arrives after a
// pause wakes sysmon and pays for a burst of 20 µs polls: on the
// development machine at half the maximum load, about a sixth of the
// servers' CPU per request and one context switch in two.
//
// With schedtrace set sysmon never deep-sleeps (it has a trace to print),
// so its poll backs off to 10 ms, as in a process that is never idle (it
// drops to 20 µs again only after it has had to take a P back).
// 2147483647 ms, the largest value, is 24.8 days between traces: the
// runtime prints one scheduler summary line (counts only, no data) to
// stderr at start when the host has been up longer than that, then one
// every 24.8 days. On a fatal error it prints the scheduler's state in
// detail first (Ms, Ps and goroutines by id, status and wait reason; no
// data), and a fatal error raised inside the scheduler while it holds its
// own lock would then hang the process instead of ending it
// (golang/go#59758): a runtime bug on top of a runtime bug.
//
// What it gives up: a P held by a goroutine blocked in a system call is
// handed to other goroutines after one or two of sysmon's 10 ms polls,
// not after 20-40 µs. The request path makes none (its sockets are
// non-blocking); the enclave's NSM ioctls run inside Blocking, which
// gives the process a second P meanwhile; what else does (the parent's
// log sink writing to a full pipe) can hold back other goroutines for up
// to 20 ms while the process has one P (see Adapt).
//
// GODEBUG holds it with the other setting the binaries run with.
const SysmonAwake = "schedtrace=2147483647"

// PagesFreedLazily is the GODEBUG setting under which the runtime gives
// the heap pages it no longer needs back to the kernel with MADV_FREE
// rather than MADV_DONTNEED.
//
// With GOGC at 400 the heap swings between its live bytes and five times
// that on every cycle, and the runtime's scavenger gives back what the
// last cycle did not use; with MADV_DONTNEED the next cycle that needs
// those pages again faults each one in, and the kernel zeroes it first.
// On the development machine at saturation the enclave took 0.5 to 0.9
// page faults per request that way, about 4% of its CPU; with MADV_FREE
// it took 0.05 to 0.13. MADV_FREE leaves a page mapped until the kernel needs the
// memory, so touching it again costs nothing; the runtime zeroes what it
// reuses itself.
//
// What it gives up: the pages given back still count in the process's
// resident size (and a cgroup's) until the kernel reclaims them, which it
// does under memory pressure as it does clean file cache (Linux 4.12 and
// later), before it kills anything. So the RSS an operator sees is the
// most the heap has held, not what it holds; the runtime's own
// accounting, and GOMEMLIMIT, are unchanged. Freed pages stay readable
// only to the process itself until reclaimed, as its unscavenged free heap
// always was; the kernel zeroes a page before mapping it anywhere else.
const PagesFreedLazily = "madvdontneed=0"

// GODEBUG is the GODEBUG value the signer's binaries are started with:
// SysmonAwake and PagesFreedLazily. The runtime reads GODEBUG once, at
// start, so the setting is the launcher's: Dockerfile.enclave (the
// enclave's measured environment), the parent's systemd unit and the
// Makefile set it.
const GODEBUG = SysmonAwake + "," + PagesFreedLazily

// Schedtrace is the schedtrace interval in milliseconds that the runtime
// takes from godebug, a GODEBUG value, or 0 if it sets none (see setting).
func Schedtrace(godebug string) int32 {
	n, _ := setting(godebug, "schedtrace")
	return n
}

// Madvdontneed is the madvdontneed value that the runtime takes from
// godebug (see setting); unset, it is the runtime's default, 1 on Linux
// (pages are given back with MADV_DONTNEED) and 0 elsewhere.
func Madvdontneed(godebug string) int32 {
	if n, ok := setting(godebug, "madvdontneed"); ok {
		return n
	}
	if runtime.GOOS == "linux" {
		return 1
	}
	return 0
}

// setting is the value of the runtime's integer setting key in godebug,
// as the runtime parses it: the last key=N whose N is a base-10 32-bit
// integer (a malformed N leaves the one before it); ok is false if there
// is none.
func setting(godebug, key string) (n int32, ok bool) {
	for field := range strings.SplitSeq(godebug, ",") {
		k, value, found := strings.Cut(field, "=")
		if !found || k != key {
			continue
		}
		if v, err := strconv.ParseInt(value, 10, 32); err == nil {
			n, ok = int32(v), true
		}
	}
	return n, ok
}

// SysmonSleeps reports whether this process's sysmon thread deep-sleeps
// when every P is idle: whether the GODEBUG it started with leaves
// schedtrace unset or at most 0.
func SysmonSleeps() bool { return Schedtrace(os.Getenv("GODEBUG")) <= 0 }

// PagesFaultBackIn reports whether this process gives heap pages back
// with MADV_DONTNEED: whether the GODEBUG it started with leaves
// madvdontneed unset or not 0.
func PagesFaultBackIn() bool { return Madvdontneed(os.Getenv("GODEBUG")) != 0 }

// WarnGODEBUG logs a warning to logger for each setting of GODEBUG the
// process was started without (or with turned off): each costs CPU.
func WarnGODEBUG(logger *slog.Logger) {
	if SysmonSleeps() {
		logger.Warn("the Go runtime's sysmon thread deep-sleeps when idle, which costs CPU on each request below saturation: start with GODEBUG="+GODEBUG+" (docs/operations.md §7)",
			"godebug", os.Getenv("GODEBUG"))
	}
	if PagesFaultBackIn() {
		logger.Warn("the Go runtime gives heap pages back with MADV_DONTNEED and faults them in again, which costs CPU at saturation: start with GODEBUG="+GODEBUG+" (docs/operations.md §7)",
			"godebug", os.Getenv("GODEBUG"))
	}
}

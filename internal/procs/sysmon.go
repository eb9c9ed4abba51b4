package procs

import (
	"log/slog"
	"os"
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
// The runtime reads GODEBUG once, at start, so the setting is the
// launcher's: Dockerfile.enclave (the enclave's measured environment),
// the parent's systemd unit and the Makefile set it.
const SysmonAwake = "schedtrace=2147483647"

// Schedtrace is the schedtrace interval in milliseconds that the runtime
// takes from godebug, a GODEBUG value: the last schedtrace=N whose N is a
// base-10 32-bit integer, as the runtime parses it (a malformed N leaves
// the one before it), or 0 if there is none.
func Schedtrace(godebug string) int32 {
	var n int32
	for field := range strings.SplitSeq(godebug, ",") {
		key, value, ok := strings.Cut(field, "=")
		if !ok || key != "schedtrace" {
			continue
		}
		if v, err := strconv.ParseInt(value, 10, 32); err == nil {
			n = int32(v)
		}
	}
	return n
}

// SysmonSleeps reports whether this process's sysmon thread deep-sleeps
// when every P is idle: whether the GODEBUG it started with leaves
// schedtrace unset or at most 0.
func SysmonSleeps() bool { return Schedtrace(os.Getenv("GODEBUG")) <= 0 }

// WarnIfSysmonSleeps logs a warning to logger if SysmonSleeps: the binary
// was started without SysmonAwake (or with schedtrace=0) and costs more
// CPU per request below saturation than it would with it.
func WarnIfSysmonSleeps(logger *slog.Logger) {
	if SysmonSleeps() {
		logger.Warn("the Go runtime's sysmon thread deep-sleeps when idle, which costs CPU on each request below saturation: start with GODEBUG="+SysmonAwake+" (docs/operations.md §7)",
			"godebug", os.Getenv("GODEBUG"))
	}
}

package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// A hostile parent's attacks on the enclave's channel listener: connections
// that start a frame and never finish it, and connections opened and never
// used, to pin the enclave's memory and file descriptors.

// enclaveRSSTarget is the enclave's memory target (docs/operations.md).
const enclaveRSSTarget = 64.0 // MiB

// partialFrame declares a frame of the largest length and sends a few bytes
// of its body.
func partialFrame() []byte {
	return append(binary.BigEndian.AppendUint32(nil, channel.MaxFrame), 0xa5, 0x01, 0x01, 0x02, 0x07)
}

// openFileLimit reads a process's soft limit on open files.
func openFileLimit(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					return n
				}
			}
		}
	}
	t.Fatal("no open-file limit for the enclave")
	return 0
}

// openFiles counts a process's open file descriptors.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// attackSize is how many connections the test can honestly open: this
// process holds one end of each (its limit is raised to the hard limit if
// need be), and the enclave must be able to hold them all, so that what
// bounds it is its own defence and not running out of descriptors.
func attackSize(t *testing.T, enclavePID, want int) int {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(want + 256); lim.Cur < need && lim.Max > lim.Cur {
		lim.Cur = min(need, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raising the open-file limit: %v", err)
		}
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	enclaveLimit := openFileLimit(t, enclavePID)
	n := min(want, int(lim.Cur)-256, enclaveLimit-128)
	if n < want {
		t.Logf("open-file limits (this process %d, the enclave %d): %d connections instead of %d", lim.Cur, enclaveLimit, n, want)
	}
	if n < min(want, 2*channel.DefaultMaxConns) {
		t.Skipf("open-file limits allow only %d connections", n)
	}
	t.Logf("%d connections; open-file limit of the enclave %d, of this process %d", n, enclaveLimit, lim.Cur)
	return n
}

// holdConns opens n connections to the enclave, each sending send, in
// batches, calling check after each batch; it closes them at cleanup.
func holdConns(t *testing.T, sock string, n int, send []byte, check func(opened int)) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for len(conns) < n {
		for range min(100, n-len(conns)) {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatalf("connection %d: %v", len(conns), err)
			}
			if len(send) > 0 {
				conn.Write(send) // the enclave may have closed it already
			}
			conns = append(conns, conn)
		}
		if check != nil {
			time.Sleep(20 * time.Millisecond) // the enclave reads what was sent
			check(len(conns))
		}
	}
	return conns
}

// closedByEnclave reports whether the enclave closed conn, waiting at most
// wait.
func closedByEnclave(conn net.Conn, wait time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(wait))
	defer conn.SetReadDeadline(time.Time{})
	var b [256]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			return !errors.Is(err, os.ErrDeadlineExceeded)
		}
	}
}

// countOpen counts the connections the enclave keeps open.
func countOpen(conns []net.Conn, wait time.Duration) (open int, newestOpen bool) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !closedByEnclave(conn, wait) {
				mu.Lock()
				open++
				newestOpen = newestOpen || i == len(conns)-1
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return open, newestOpen
}

// TestPartialFramesDoNotPinEnclaveMemory holds thousands of connections to
// the real enclave, each with a frame that declares the largest length and
// sends a few bytes of it (or a little more): the enclave's RSS stays under
// its target, it keeps no more than its cap of connections, and a genuine
// client gets its answers while they are held.
func TestPartialFramesDoNotPinEnclaveMemory(t *testing.T) {
	skipMemoryBoundUnderRace(t)
	tests := []struct {
		name  string
		body  int // bytes of the body sent, beyond a few
		conns int
	}{
		{"bad_a_few_bytes", 0, 3000},
		{"bad_32KiB_of_body", 32 << 10, 3000},
		// The most a connection can hold, on twice as many connections
		// as the enclave keeps.
		{"bad_one_byte_short_of_the_largest_frame", channel.MaxFrame - 6, 2 * channel.DefaultMaxConns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client("broker")
			if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
				t.Fatal(err)
			}
			pid := e.enclave.cmd.Process.Pid
			n := attackSize(t, pid, tt.conns)
			base, err := rssMiB(pid)
			if err != nil {
				t.Fatal(err)
			}
			peak := base
			check := func(opened int) {
				t.Helper()
				rss, err := rssMiB(pid)
				if err != nil {
					t.Fatalf("enclave gone after %d connections: %v", opened, err)
				}
				peak = max(peak, rss)
				if rss > enclaveRSSTarget {
					t.Fatalf("enclave RSS %.1f MiB after %d connections each holding a partial frame (%.1f MiB before), target %.0f MiB", rss, opened, base, enclaveRSSTarget)
				}
			}
			holdConns(t, e.sock, n, append(partialFrame(), make([]byte, tt.body)...), check)
			for i := range 20 {
				if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
					t.Fatalf("genuine call %d while %d partial frames are held: %v", i, n, err)
				}
			}
			check(n)
			if fds := openFiles(t, pid); fds > channel.DefaultMaxConns+32 {
				t.Fatalf("the enclave holds %d open files, want at most its %d connections and a few", fds, channel.DefaultMaxConns)
			}
			t.Logf("%d partial frames held: enclave RSS %.1f MiB before, peak %.1f MiB", n, base, peak)
		})
	}
}

// TestIncompleteFrameIsDroppedAfterDeadline: the enclave closes a connection
// whose frame does not complete within the frame timeout, and keeps one that
// is idle between frames.
func TestIncompleteFrameIsDroppedAfterDeadline(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	partial := holdConns(t, e.sock, 20, partialFrame(), nil)
	idle := holdConns(t, e.sock, 1, nil, nil)[0]
	start := time.Now()
	open, _ := countOpen(partial, channel.DefaultFrameTimeout/2)
	if open != len(partial) {
		t.Fatalf("%d of %d partial frames dropped within half the frame timeout", len(partial)-open, len(partial))
	}
	if open, _ := countOpen(partial, channel.DefaultFrameTimeout+3*time.Second-time.Since(start)); open != 0 {
		t.Fatalf("%d of %d connections with an incomplete frame still open %s after it began (frame timeout %s)",
			open, len(partial), time.Since(start).Round(time.Second), channel.DefaultFrameTimeout)
	}
	if closedByEnclave(idle, time.Second) {
		t.Fatal("the enclave closed a connection idle between frames")
	}
	if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatal(err)
	}
}

// TestChannelConnectionsAreCapped opens more idle connections than the
// enclave keeps (its cap set by --max-conns): it holds no more than its cap,
// a newcomer still gets in and is answered, and the genuine client is served
// throughout.
func TestChannelConnectionsAreCapped(t *testing.T) {
	const max = 16
	e := newEnv(t, "--max-conns", strconv.Itoa(max))
	c := e.client("broker")
	if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatal(err)
	}
	pid := e.enclave.cmd.Process.Pid
	before := openFiles(t, pid)
	conns := holdConns(t, e.sock, 20*max, nil, nil)
	time.Sleep(200 * time.Millisecond)
	open, newest := countOpen(conns, 500*time.Millisecond)
	if open > max || !newest {
		t.Fatalf("the enclave keeps %d of %d idle connections open (newest open: %v), want at most %d and the newest",
			open, len(conns), newest, max)
	}
	if fds := openFiles(t, pid); fds > before+max {
		t.Fatalf("the enclave holds %d open files (%d before), want at most %d more", fds, before, max)
	}
	// A newcomer is answered.
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call, err := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeCall, ID: 7, Route: "ready"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(call); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, _, err := channel.ReadFrame(bufio.NewReader(conn), nil)
	if err != nil || f.Type != channel.TypeReply || f.ID != 7 {
		t.Fatalf("a newcomer beyond the cap: %+v %v, want a reply to its call", f, err)
	}
	if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatal(err)
	}
}

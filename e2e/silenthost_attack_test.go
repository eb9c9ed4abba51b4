package e2e

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
)

// A parent that reads the enclave's host calls and never answers them,
// not even to say their deadline passed, while it keeps the connection
// open. The enclave's host client holds a call's slot until its answer
// comes, as the parent's own client does (the server may still be working
// on it); with every slot held no host call would be sent again, and the
// enclave could never store or read its sealed state until the parent
// chose to close the connection.

// silentFront serves the enclave's host channel on sock: the first
// connection it accepts it reads and never answers; every later one is
// passed through to the honest host service at honest. It counts the
// connections accepted.
func silentFront(t *testing.T, sock, honest string, forge bool) *atomic.Int64 {
	t.Helper()
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
			if accepted.Add(1) == 1 {
				go io.Copy(io.Discard, conn) // reads every call, answers none
				if forge {
					go forgeReplies(conn)
				}
				continue
			}
			up, err := net.Dial("unix", honest)
			if err != nil {
				conn.Close()
				continue
			}
			t.Cleanup(func() { up.Close() })
			go func() { io.Copy(up, conn); up.Close() }()
			go func() { io.Copy(conn, up); conn.Close() }()
		}
	}()
	return &accepted
}

// forgeReplies writes, every 500 ms, a reply to an id the enclave never
// sent, so that the connection is never quiet, until the write fails.
func forgeReplies(conn net.Conn) {
	b, _ := channel.AppendFrame(nil, &channel.Frame{Type: channel.TypeReply, ID: 1 << 62, Status: 200, Body: []byte("{}")})
	for {
		if _, err := conn.Write(b); err != nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestSilentParentDoesNotWedgeTheHostChannel: the enclave's host calls on
// a connection the parent never answers fail at their deadline; once one
// is unanswered the grace past it, the enclave closes that connection and
// redials, and an import (which lists and stores sealed state) succeeds on
// the new one.
func TestSilentParentDoesNotWedgeTheHostChannel(t *testing.T) {
	t.Run("silent", func(t *testing.T) { silentParent(t, false) })
	// Replies to no call keep the connection from going quiet: each must
	// break it instead.
	t.Run("forging_replies", func(t *testing.T) { silentParent(t, true) })
}

func silentParent(t *testing.T, forge bool) {
	dir := t.TempDir()
	h := startLyingHost(t, filepath.Join(dir, "host.sock"))
	front := filepath.Join(dir, "front.sock")
	accepted := silentFront(t, front, filepath.Join(dir, "host.sock"), forge)
	e := newHostEnv(t, dir, "", "unix://"+front, nil, []string{"--no-keys"})
	admin := e.client("admin")
	secret := make([]byte, 32)
	rand.Read(secret)

	// Host calls time out after 10 s and channel.DefaultAnswerGrace is
	// 5 s: within about 15 s of the first unanswered call the connection
	// must go.
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	var errs []string
	for {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := admin.ImportSecret(c, secret)
		cancel()
		if err == nil {
			break
		}
		errs = append(errs, err.Error())
		if time.Now().After(deadline) {
			t.Fatalf("no import succeeded in %s against a parent that never answers the host connection it holds (%d host connections made): %q",
				time.Since(start).Round(time.Second), accepted.Load(), errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := accepted.Load(); n < 2 {
		t.Fatalf("import succeeded with %d host connections made, want the silent one redialled", n)
	}
	if h.callsTo(hostproto.RouteStatePut) == 0 {
		t.Fatal("the import succeeded without storing its sealed keyring")
	}
	if !forge {
		e.enclave.waitLine(t, "unanswered past its deadline", 5*time.Second)
	}
	t.Logf("import succeeded %s after start, after %d failures (%q), on host connection %d",
		time.Since(start).Round(100*time.Millisecond), len(errs), errs, accepted.Load())
}

package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/client"
)

// freePort reserves a loopback port for a parent that must come back on the
// same address.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestParentRestartUnderLoad restarts the parent while clients call it; the
// clients reconnect on their own and every failure is a transport error or
// a parent 503, never a wrong answer.
func TestParentRestartUnderLoad(t *testing.T) {
	e := newEnv(t)
	addr := freePort(t)
	e.parentP.stop()
	e.startParent("unix://"+e.sock, "--listen", addr)
	c := e.client("broker")
	if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	okBefore, okAfter, restarted := 0, 0, false
	stop := load(4, func() {
		_, err := c.DeriveAddress(ctx(t), omniHex, 0)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && restarted:
			okAfter++
		case err == nil:
			okBefore++
		default:
			var pe *client.ParentError
			if !errors.As(err, &pe) && errors.Is(err, client.ErrResponse) {
				t.Errorf("a response was refused during the restart: %v", err)
			}
		}
	})
	time.Sleep(300 * time.Millisecond)
	e.parentP.stop()
	e.startParent("unix://"+e.sock, "--listen", addr)
	mu.Lock()
	restarted = true
	mu.Unlock()
	time.Sleep(time.Second)
	stop()
	if okBefore == 0 || okAfter == 0 {
		t.Fatalf("%d answers before and %d after the restart", okBefore, okAfter)
	}
}

// TestHostileTrafficAtTheParent: a thousand idle connections and a slow
// sender do not stop the parent from serving others, and the slow sender is
// cut off.
func TestHostileTrafficAtTheParent(t *testing.T) {
	e := newEnv(t)
	host := strings.TrimPrefix(e.parent, "https://")
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 1000 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatalf("after %d idle connections: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	start := time.Now()
	if _, err := e.client("broker").DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatalf("with 1000 idle connections open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a call took %s with idle connections open", d)
	}

	// A slow sender: a valid TLS client that sends its request headers
	// one byte a second. The parent's header timeout (5 s) closes it.
	cert := e.tlsCert("broker")
	conn, err := tls.Dial("tcp", host, &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: e.serverPool(),
		Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan time.Duration, 1)
	go func() {
		begin := time.Now()
		req := fmt.Sprintf("POST /v1/derive-address HTTP/1.1\r\nHost: %s\r\nContent-Length: 10\r\n", host)
		for i := range len(req) {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				closed <- time.Since(begin)
				return
			}
			time.Sleep(time.Second)
		}
		closed <- -1
	}()
	// Meanwhile others are served.
	if _, err := e.client("worker").DeriveAddress(ctx(t), omniHex, 0); err != nil {
		t.Fatalf("while a slow sender trickles: %v", err)
	}
	select {
	case d := <-closed:
		if d < 0 || d > 12*time.Second {
			t.Fatalf("the slow sender was not cut off (%s)", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the slow sender was never cut off")
	}
	resp, err := e.httpClient("broker").Get(e.parent + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d after hostile traffic", resp.StatusCode)
	}
}

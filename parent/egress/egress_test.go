package egress_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/parent/egress"
)

// target is an echo server standing for KMS.
func target(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func proxy(t *testing.T, allow ...string) (string, *[]string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "egress.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	p := &egress.Proxy{Allow: allow, Logger: slog.New(slog.DiscardHandler), OnTunnel: func(target string, ok bool) {
		if !ok {
			seen = append(seen, target)
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Serve(ctx, ln)
	return sock, &seen
}

func connect(t *testing.T, sock, request string) (*bufio.Reader, net.Conn, int) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, request)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return br, c, resp.StatusCode
}

func TestTunnelToAllowedTarget(t *testing.T) {
	dst := target(t)
	sock, _ := proxy(t, dst)
	br, c, status := connect(t, sock, "CONNECT "+dst+" HTTP/1.1\r\nHost: "+dst+"\r\n\r\n")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	io.WriteString(c, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo through the tunnel: %q, %v", line, err)
	}
}

func TestTunnelRefusals(t *testing.T) {
	dst := target(t)
	sock, refused := proxy(t, dst)
	for name, req := range map[string]string{
		"target_off_the_allow_list": "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
		"plain_get_not_connect":     "GET http://" + dst + "/ HTTP/1.1\r\nHost: " + dst + "\r\n\r\n",
		"host_case_and_port_games":  "CONNECT " + strings.Replace(dst, "127.0.0.1", "localhost", 1) + " HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		if _, _, status := connect(t, sock, req); status != 403 {
			t.Errorf("%s: status %d", name, status)
		}
	}
	if len(*refused) != 3 {
		t.Fatalf("refusals counted: %v", *refused)
	}
}

func TestParseAllow(t *testing.T) {
	if got, err := egress.ParseAllow(" kms.us-east-1.amazonaws.com:443, ,sts.amazonaws.com:443"); err != nil || len(got) != 2 {
		t.Fatalf("%v, %v", got, err)
	}
	for _, bad := range []string{"kms.us-east-1.amazonaws.com", "https://kms:443/x"} {
		if _, err := egress.ParseAllow(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

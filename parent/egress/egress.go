// Package egress is the enclave's only way out: an HTTP CONNECT proxy on a
// channel listener (vsock in production) that opens TCP connections to an
// allow-list of host:port pairs and relays bytes. The enclave runs TLS to
// the target over the tunnel, so the parent sees ciphertext only.
package egress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Proxy serves CONNECT requests to allowed targets.
type Proxy struct {
	// Allow lists the permitted targets, exactly as host:port.
	Allow  []string
	Logger *slog.Logger
	// Dial opens the upstream connection; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OnTunnel is told of every request (metrics): the target and whether
	// it was allowed.
	OnTunnel func(target string, allowed bool)
}

// ParseAllow splits a comma-separated allow-list, checking each host:port.
func ParseAllow(s string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(t); err != nil || port == "" {
			return nil, errors.New("egress: allow-list entries must be host:port: " + t)
		}
		out = append(out, t)
	}
	return out, nil
}

func (p *Proxy) allowed(target string) bool {
	for _, a := range p.Allow {
		if strings.EqualFold(a, target) {
			return true
		}
	}
	return false
}

// Serve accepts tunnels on ln until ctx ends.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.tunnel(ctx, conn)
		}()
	}
}

func (p *Proxy) tunnel(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	target := req.Host
	if req.Method != http.MethodConnect || !p.allowed(target) {
		if p.OnTunnel != nil {
			p.OnTunnel(target, false)
		}
		p.Logger.Warn("egress refused", "method", req.Method, "target", target)
		io.WriteString(conn, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if p.OnTunnel != nil {
		p.OnTunnel(target, true)
	}
	dial := p.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	up, err := dial(ctx, "tcp", target)
	if err != nil {
		p.Logger.Warn("egress dial failed", "target", target, "err", err)
		io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	conn.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	p.Logger.Info("egress tunnel", "target", target)
	done := make(chan struct{}, 2)
	go func() {
		// Bytes the client sent after the CONNECT are in br's buffer.
		io.Copy(up, br)
		closeWrite(up)
		done <- struct{}{}
	}()
	go func() {
		io.Copy(conn, up)
		closeWrite(conn)
		done <- struct{}{}
	}()
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

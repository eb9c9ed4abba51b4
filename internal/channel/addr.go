package channel

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/mdlayher/vsock"
)

// Addr is a parsed channel address.
type Addr struct {
	Scheme string // "vsock", "unix" or "tcp"
	// Path for unix; Host ("host:port") for tcp; CID and Port for vsock.
	Path string
	Host string
	CID  uint32
	Port uint32
}

func (a Addr) String() string {
	switch a.Scheme {
	case "unix":
		return "unix://" + a.Path
	case "vsock":
		return fmt.Sprintf("vsock://%d:%d", a.CID, a.Port)
	default:
		return "tcp://" + a.Host
	}
}

// ParseAddr parses vsock://CID:PORT, unix:///path or tcp://host:port.
func ParseAddr(s string) (Addr, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Addr{}, fmt.Errorf("channel address %q: %v", s, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || u.Path == "" {
			return Addr{}, fmt.Errorf("channel address %q: want unix:///absolute/path", s)
		}
		return Addr{Scheme: "unix", Path: u.Path}, nil
	case "tcp":
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Path != "" {
			return Addr{}, fmt.Errorf("channel address %q: want tcp://host:port", s)
		}
		return Addr{Scheme: "tcp", Host: u.Host}, nil
	case "vsock":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || u.Path != "" {
			return Addr{}, fmt.Errorf("channel address %q: want vsock://CID:PORT", s)
		}
		cid, err1 := strconv.ParseUint(host, 10, 32)
		p, err2 := strconv.ParseUint(port, 10, 32)
		if err1 != nil || err2 != nil {
			return Addr{}, fmt.Errorf("channel address %q: CID and port must be numbers", s)
		}
		return Addr{Scheme: "vsock", CID: uint32(cid), Port: uint32(p)}, nil
	}
	return Addr{}, fmt.Errorf("channel address %q: scheme must be vsock, unix or tcp", s)
}

// Listen listens on the address. For vsock the CID is the enclave's own.
func Listen(a Addr) (net.Listener, error) {
	switch a.Scheme {
	case "unix":
		return net.Listen("unix", a.Path)
	case "tcp":
		return net.Listen("tcp", a.Host)
	case "vsock":
		return vsock.ListenContextID(a.CID, a.Port, nil)
	}
	return nil, fmt.Errorf("channel: cannot listen on %v", a)
}

// Dial connects to the address.
func Dial(ctx context.Context, a Addr) (net.Conn, error) {
	switch a.Scheme {
	case "unix", "tcp":
		var d net.Dialer
		network, target := a.Scheme, a.Host
		if a.Scheme == "unix" {
			target = a.Path
		}
		return d.DialContext(ctx, network, target)
	case "vsock":
		return vsock.DialContext(ctx, a.CID, a.Port, nil)
	}
	return nil, fmt.Errorf("channel: cannot dial %v", a)
}

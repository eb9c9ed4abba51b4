package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// The hostile parent's tools. A frameMITM sits on the channel between the
// real parent binary and one or more real enclaves, as a compromised parent
// instance can: it records every frame that crosses, can alter or drop any
// of them, routes each call to the enclave of its choice, and can replay
// anything it recorded to any enclave, on a connection of its own.
//
// To point it at a new method: start the stacks, put the MITM in front
// (e.startParent(m.addr)), drive the method with a client, then take the
// recorded calls (m.calls(route)) and replay, alter or reroute them, and
// assert on the enclave's signed answer (m.replay) and on its state.
type frameMITM struct {
	t       *testing.T
	addr    string   // unix://… the parent dials
	targets []string // enclave sockets
	// target is the index of the enclave new calls go to.
	target atomic.Int32

	mu      sync.Mutex
	router  func(f *channel.Frame) int
	frames  []mitmFrame
	onCall  func(f *channel.Frame) (drop bool)
	onReply func(call, reply *channel.Frame) (drop bool)
}

// mitmFrame is one recorded frame: a call as the parent sent it (before any
// alteration), or a reply as the enclave sent it.
type mitmFrame struct {
	Call   bool
	Target int // the enclave it went to or came from
	Frame  channel.Frame
}

// startFrameMITM listens on a fresh socket and forwards to the enclaves at
// targets (socket paths); calls go to targets[0] until route is called.
func startFrameMITM(t *testing.T, targets ...string) *frameMITM {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mitm.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	m := &frameMITM{t: t, addr: "unix://" + sock, targets: targets}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serve(conn)
		}
	}()
	return m
}

// behindMITM restarts e's parent on a frameMITM in front of e's enclave
// (target 0) and the enclaves at others (targets 1, …).
func (e *env) behindMITM(others ...string) *frameMITM {
	e.t.Helper()
	m := startFrameMITM(e.t, append([]string{e.sock}, others...)...)
	e.parentP.stop()
	e.startParent(m.addr)
	return m
}

// twoReplicas starts two sealed stacks of one deployment (one PKI, one
// sealing key, each its own store), ready, with a's parent behind a
// frameMITM that reaches a (target 0) and b (target 1).
func twoReplicas(t *testing.T) (a, b *env, m *frameMITM) {
	t.Helper()
	dir := t.TempDir()
	a = newSealedEnv(t, dir, "a-")
	b = newSealedEnv(t, dir, "b-")
	b.waitReady()
	m = a.behindMITM(b.sock)
	a.waitReady()
	return a, b, m
}

// route sends every later call to targets[i].
func (m *frameMITM) route(i int) { m.target.Store(int32(i)) }

// setRouter chooses the enclave of each later call by the call itself
// (its route, say); nil goes back to route's choice.
func (m *frameMITM) setRouter(f func(*channel.Frame) int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.router = f
}

// setHooks installs functions that may alter a call or a reply in place,
// or drop it. nil restores pass-through.
func (m *frameMITM) setHooks(onCall func(*channel.Frame) bool, onReply func(call, reply *channel.Frame) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onCall, m.onReply = onCall, onReply
}

// calls returns the recorded calls on route, oldest first.
func (m *frameMITM) calls(route string) []channel.Frame {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []channel.Frame
	for _, f := range m.frames {
		if f.Call && f.Frame.Route == route {
			out = append(out, f.Frame)
		}
	}
	return out
}

// recorded returns every frame that crossed, both ways, encoded as on the
// wire.
func (m *frameMITM) recorded() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []byte
	for _, f := range m.frames {
		out, _ = channel.AppendFrame(out, &f.Frame)
	}
	return out
}

func (m *frameMITM) record(call bool, target int, f *channel.Frame) {
	c := *f
	c.Body = bytes.Clone(f.Body)
	m.mu.Lock()
	m.frames = append(m.frames, mitmFrame{Call: call, Target: target, Frame: c})
	m.mu.Unlock()
}

// serve relays one parent connection. Each call is sent, under the
// parent's id, on this connection's own link to the enclave it is routed
// to; replies come back in whatever order the enclaves answer.
func (m *frameMITM) serve(parent net.Conn) {
	defer parent.Close()
	var (
		writeMu sync.Mutex
		linksMu sync.Mutex
		links   = map[int]net.Conn{}
		pending sync.Map // id → *channel.Frame (the call as forwarded)
	)
	defer func() {
		linksMu.Lock()
		for _, c := range links {
			c.Close()
		}
		linksMu.Unlock()
	}()
	link := func(i int) (net.Conn, error) {
		linksMu.Lock()
		defer linksMu.Unlock()
		if c, ok := links[i]; ok {
			return c, nil
		}
		c, err := net.Dial("unix", m.targets[i])
		if err != nil {
			return nil, err
		}
		links[i] = c
		go func() {
			defer parent.Close() // an enclave that goes away takes the link with it
			var buf []byte
			for {
				f, b, err := channel.ReadFrame(c, buf)
				buf = b
				if err != nil {
					return
				}
				m.record(false, i, f)
				v, _ := pending.LoadAndDelete(f.ID)
				call, _ := v.(*channel.Frame)
				m.mu.Lock()
				hook := m.onReply
				m.mu.Unlock()
				if hook != nil && call != nil && hook(call, f) {
					continue
				}
				out, _ := channel.AppendFrame(nil, f)
				writeMu.Lock()
				parent.Write(out)
				writeMu.Unlock()
			}
		}()
		return c, nil
	}
	var buf []byte
	for {
		f, b, err := channel.ReadFrame(parent, buf)
		buf = b
		if err != nil {
			return
		}
		m.mu.Lock()
		hook, router := m.onCall, m.router
		m.mu.Unlock()
		i := int(m.target.Load())
		if router != nil {
			i = router(f)
		}
		m.record(true, i, f)
		if hook != nil && hook(f) {
			continue
		}
		c, err := link(i)
		if err != nil {
			return
		}
		fc := *f
		pending.Store(f.ID, &fc)
		out, _ := channel.AppendFrame(nil, f)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// replay sends a recorded (or crafted) call to targets[i] on a connection
// of the MITM's own, and returns the enclave's reply frame.
func (m *frameMITM) replay(i int, call channel.Frame) *channel.Frame {
	m.t.Helper()
	return sendFrame(m.t, m.targets[i], call)
}

// sendFrame writes one call frame to the enclave socket at sock and reads
// its reply, as a hostile parent holding the socket can.
func sendFrame(t *testing.T, sock string, call channel.Frame) *channel.Frame {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call.Type, call.ID = channel.TypeCall, 1
	if call.TimeoutMS == 0 {
		call.TimeoutMS = 10_000
	}
	out, err := channel.AppendFrame(nil, &call)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	f, _, err := channel.ReadFrame(conn, nil)
	if err != nil {
		t.Fatalf("no reply to the %s call: %v", call.Route, err)
	}
	return f
}

// enclaveKey attests the enclave at sock over the channel (as the parent
// can) and returns its response key and kid.
func (e *env) enclaveKey(sock string) (*ecdsa.PublicKey, string) {
	e.t.Helper()
	nonce := make([]byte, 32)
	rand.Read(nonce)
	r := sendFrame(e.t, sock, channel.Frame{Route: "attestation", Body: nonce})
	doc, err := attestation.Verify(r.Body, attestation.Policy{Roots: e.devRoots, Clock: time.Now, Nonce: nonce, PCRs: e.pcrs})
	if err != nil {
		e.t.Fatalf("attestation of %s: %v", sock, err)
	}
	pk, err := x509.ParsePKIXPublicKey(doc.PublicKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return pk.(*ecdsa.PublicKey), envelope.KeyID(doc.PublicKey)
}

// signedCode checks that reply is the enclave at sock's signed answer to
// call and returns its error code ("" for a result).
func (e *env) signedCode(sock string, call channel.Frame, reply *channel.Frame) api.Code {
	e.t.Helper()
	key, kid := e.enclaveKey(sock)
	resp, err := envelope.VerifyResponse(reply.Body, call.Body, func(k string) *ecdsa.PublicKey {
		if k == kid {
			return key
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("answer (%d %q) is not the enclave's signed answer to the call: %v", reply.Status, reply.Body, err)
	}
	if resp.Err == nil {
		return ""
	}
	return resp.Err.Code
}

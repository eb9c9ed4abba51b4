package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// A hostile parent's attacks on the enclave with complete calls: many of the
// largest calls a frame admits, signed by a genuine caller and carrying a
// chain of the largest certificates, sent faster than the enclave answers or
// with their replies never read, to make the enclave hold them in flight.

// largestSignedCall is a call to route as large as a frame admits: a request
// signed by the broker whose params are padded to near the largest body, and
// its certificate followed by intermediates of the largest size.
func (e *env) largestSignedCall(route string) channel.Frame {
	e.t.Helper()
	pad := channel.MaxBody * 3 / 4
	for {
		body, chain := e.request("broker", route, map[string]string{"operator_omni": omniHex, "pad": strings.Repeat("a", pad)}, nil)
		if len(body) > channel.MaxBody {
			pad -= (len(body)-channel.MaxBody)*3/4 + 64
			continue
		}
		chain = append([][]byte{}, chain...)
		for len(chain) < channel.MaxChain {
			chain = append(chain, bytes.Repeat([]byte{0x30}, channel.MaxCertificate))
		}
		for i, c := range chain {
			if len(c) > channel.MaxCertificate {
				chain[i] = c[:channel.MaxCertificate]
			}
		}
		return channel.Frame{Type: channel.TypeCall, ID: 1, Route: route, Body: body, Chain: chain, TimeoutMS: 30_000}
	}
}

// flood writes call to the enclave at sock over conns connections, again
// and again, until stop is closed; a connection the enclave closes is
// opened again. If slow is false the replies are never read, else they are
// read at a trickle, too slowly to keep up yet fast enough to keep each of
// the enclave's writes within its timeout.
func flood(t *testing.T, sock string, call []byte, conns int, slow bool, stop <-chan struct{}, sent *atomic.Int64) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				conn, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				go func() { <-stop; conn.Close() }()
				if slow {
					go func() {
						var b [4 << 10]byte
						for {
							if _, err := io.ReadFull(conn, b[:]); err != nil {
								return
							}
							time.Sleep(200 * time.Millisecond)
						}
					}()
				}
				for {
					if _, err := conn.Write(call); err != nil {
						break
					}
					sent.Add(1)
				}
				conn.Close()
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	return &wg
}

// TestCallsHeldInFlightDoNotPinEnclaveMemory floods the real enclave with
// the largest complete calls, to a key route (run on goroutines of their
// own) and to a signing route (run on the workers), their replies unread or
// read at a trickle, so that the enclave would hold them in flight: its RSS
// stays under its target, and a genuine client gets its answers while the
// flood runs.
func TestCallsHeldInFlightDoNotPinEnclaveMemory(t *testing.T) {
	skipMemoryBoundUnderRace(t)
	tests := []struct {
		name  string
		route string
		slow  bool
	}{
		{"bad_largest_calls_to_a_key_route_replies_unread", "v1/keys/status", false},
		{"bad_largest_calls_to_a_key_route_replies_read_slowly", "v1/keys/rotate", true},
		{"bad_largest_calls_to_a_signing_route_replies_unread", "v1/derive-address", false},
		{"bad_largest_calls_to_a_signing_route_replies_read_slowly", "v1/derive-address", true},
	}
	const conns, attack = 8, 8 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client("broker")
			if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
				t.Fatal(err)
			}
			f := e.largestSignedCall(tt.route)
			call, err := channel.AppendFrame(nil, &f)
			if err != nil {
				t.Fatal(err)
			}
			pid := e.enclave.cmd.Process.Pid
			base, err := rssMiB(pid)
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var sent atomic.Int64
			floods := flood(t, e.sock, call, conns, tt.slow, stop, &sent)
			stopped := false
			end := func() {
				if !stopped {
					stopped = true
					close(stop)
					floods.Wait()
				}
			}
			defer end()

			// The genuine client calls throughout.
			var genuine, failed atomic.Int64
			var firstErr atomic.Value
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := c.DeriveAddress(cctx, omniHex, 0)
					cancel()
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					} else {
						genuine.Add(1)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()

			peak := base
			start := time.Now()
			for time.Since(start) < attack {
				time.Sleep(50 * time.Millisecond)
				rss, err := rssMiB(pid)
				if err != nil {
					t.Fatalf("enclave gone after %d of the largest calls: %v", sent.Load(), err)
				}
				peak = max(peak, rss)
				if rss > enclaveRSSTarget {
					t.Fatalf("enclave RSS %.1f MiB after %s and %d of the largest calls (%.1f MiB before), target %.0f MiB",
						rss, time.Since(start).Round(time.Millisecond), sent.Load(), base, enclaveRSSTarget)
				}
			}
			end()
			<-done
			if err, _ := firstErr.Load().(error); err != nil {
				t.Fatalf("%d of %d genuine calls failed during the flood, the first: %v", failed.Load(), failed.Load()+genuine.Load(), err)
			}
			if genuine.Load() < 5 {
				t.Fatalf("%d genuine calls answered in %s of flood, want the client served throughout", genuine.Load(), attack)
			}
			if _, err := c.DeriveAddress(ctx(t), omniHex, 0); err != nil {
				t.Fatalf("genuine call after the flood: %v", err)
			}
			t.Logf("%d of the largest calls (%d KiB each) in %s: enclave RSS %.1f MiB before, peak %.1f MiB; %d genuine calls answered",
				sent.Load(), len(call)>>10, attack, base, peak, genuine.Load())
		})
	}
}

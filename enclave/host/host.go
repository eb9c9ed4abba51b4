// Package host is the enclave's view of its parent instance: the calls the
// enclave makes to the parent over a second channel (the state store and the
// instance role's AWS credentials), and the egress dialer through which it
// reaches allow-listed hosts such as KMS.
//
// Nothing the parent answers is trusted: sealed keyrings are authenticated
// when opened, credentials only let the enclave ask KMS (which checks the
// enclave's attestation itself), and TLS to KMS ends inside the enclave.
package host

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

// Bounds on what the enclave accepts from the parent.
const (
	callTimeout = 10 * time.Second
	// The parent's JSON answers, decoded strictly (strictjson.Decode).
	maxListJSON = 48 + hostproto.MaxSequences*21
	maxRefJSON  = 64
)

// ErrUnavailable: the parent did not answer, or answered with an error.
var ErrUnavailable = errors.New("host: parent unavailable")

// Error is a call to the parent that failed: its route and the status the
// parent answered, or Status 0 when no answer came. It never holds the
// body of the parent's reply: that text is the parent's to choose, and the
// enclave quotes errors in its readiness and in answers it signs, where a
// hostile parent's words ("visit … to recover") must never appear as the
// enclave's. It is ErrUnavailable under errors.Is.
type Error struct {
	Route  string
	Status int
	// cause is the channel's error when no answer came (the enclave's own
	// words, for errors.Is); not part of Error().
	cause error
}

func (e *Error) Error() string {
	switch {
	case e.Status != 0:
		return fmt.Sprintf("%v: %s: status %d", ErrUnavailable, e.Route, e.Status)
	case errors.Is(e.cause, context.DeadlineExceeded):
		return fmt.Sprintf("%v: %s: no answer in time", ErrUnavailable, e.Route)
	}
	return fmt.Sprintf("%v: %s: no answer", ErrUnavailable, e.Route)
}

// Unwrap gives ErrUnavailable and, when no answer came, the channel's error.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.cause}
}

// ErrNotFound: the state store has no such sequence.
var ErrNotFound = errors.New("host: no such sequence")

// ErrExists: the state store already holds the sequence a put named, so
// nothing was written (another writer won it). The parent may say so
// falsely; the enclave then reads what it claims is stored, which must
// open and extend the keyring before anything is adopted.
var ErrExists = errors.New("host: sequence already stored")

// Client calls the parent.
type Client struct {
	ch *channel.Client
}

// Dial returns a client of the parent at addr; it connects in the
// background and redials as needed, also when the parent leaves a call
// unanswered past its deadline (channel.ClientOptions.AnswerGrace), which
// logger, if not nil, is told.
func Dial(addr channel.Addr, logger *slog.Logger) *Client {
	opts := channel.ClientOptions{PoolSize: 1, InFlight: hostproto.InFlight}
	if logger != nil {
		opts.OnOverdue = func() {
			logger.Warn("the parent left a host call unanswered past its deadline: its connection is closed and redialled")
		}
	}
	return &Client{ch: channel.NewClient(addr, opts)}
}

// Close closes the connection.
func (c *Client) Close() { c.ch.Close() }

func (c *Client) call(ctx context.Context, route string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	// The pool connects in the background: wait briefly for it at boot.
	for c.ch.Live() == 0 {
		select {
		case <-ctx.Done():
			return nil, &Error{Route: route, cause: ctx.Err()}
		case <-time.After(20 * time.Millisecond):
		}
	}
	r, err := c.ch.Call(ctx, &channel.Call{Route: route, Body: body})
	if err != nil {
		return nil, &Error{Route: route, cause: err}
	}
	switch {
	case r.Status == 404:
		return nil, ErrNotFound
	case r.Status == hostproto.StatusExists && route == hostproto.RouteStatePut:
		return nil, ErrExists
	case r.Status != 200:
		// The body is the parent's text: only the status is kept.
		return nil, &Error{Route: route, Status: r.Status}
	}
	return r.Body, nil
}

// List returns the stored sequences above after, oldest first, at most
// hostproto.MaxSequences; more says the parent stopped before the store's
// end, and the caller lists again after the last one.
func (c *Client) List(ctx context.Context, after uint64) ([]uint64, bool, error) {
	body, _ := json.Marshal(hostproto.ListRequest{After: after})
	b, err := c.call(ctx, hostproto.RouteStateList, body)
	if err != nil {
		return nil, false, err
	}
	return ParseSequenceList(b, after)
}

// ParseSequenceList checks a state/list answer to a call listing after
// after: at most hostproto.MaxSequences sequences, each above after,
// strictly ascending.
func ParseSequenceList(b []byte, after uint64) ([]uint64, bool, error) {
	var l hostproto.SequenceList
	if err := strictjson.Decode(b, &l, maxListJSON); err != nil || len(l.Sequences) > hostproto.MaxSequences {
		return nil, false, fmt.Errorf("%w: malformed sequence list", ErrUnavailable)
	}
	prev := after
	for _, seq := range l.Sequences {
		if seq <= prev {
			return nil, false, fmt.Errorf("%w: sequence list not above %d and ascending", ErrUnavailable, after)
		}
		prev = seq
	}
	return l.Sequences, l.More, nil
}

// Get reads one sequence.
func (c *Client) Get(ctx context.Context, seq uint64) ([]byte, error) {
	body, _ := json.Marshal(hostproto.SequenceRef{Seq: seq})
	b, err := c.call(ctx, hostproto.RouteStateGet, body)
	if err != nil {
		return nil, err
	}
	if len(b) > hostproto.MaxBlob {
		return nil, fmt.Errorf("%w: sequence %d of %d bytes", ErrUnavailable, seq, len(b))
	}
	return b, nil
}

// Put stores b as seq, unless the store holds seq already (ErrExists),
// and returns once the parent reports it durable.
func (c *Client) Put(ctx context.Context, seq uint64, b []byte) error {
	if seq == 0 || len(b) == 0 || len(b) > hostproto.MaxBlob {
		return fmt.Errorf("%w: refusing to store sequence %d of %d bytes", ErrUnavailable, seq, len(b))
	}
	r, err := c.call(ctx, hostproto.RouteStatePut, hostproto.EncodePut(seq, b))
	if err != nil {
		return err
	}
	got, err := ParseSequenceRef(r)
	if err != nil {
		return err
	}
	if got != seq {
		return fmt.Errorf("%w: put of sequence %d answered for %d", ErrUnavailable, seq, got)
	}
	return nil
}

// ParseSequenceRef checks a state/put answer.
func ParseSequenceRef(b []byte) (uint64, error) {
	var ref hostproto.SequenceRef
	if err := strictjson.Decode(b, &ref, maxRefJSON); err != nil || ref.Seq == 0 {
		return 0, fmt.Errorf("%w: malformed put reply", ErrUnavailable)
	}
	return ref.Seq, nil
}

// Credentials fetches the instance role's temporary credentials.
func (c *Client) Credentials(ctx context.Context) (*hostproto.Credentials, error) {
	b, err := c.call(ctx, hostproto.RouteCredentials, nil)
	if err != nil {
		return nil, err
	}
	creds, err := hostproto.ParseCredentials(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return creds, nil
}

// EgressDialer returns a DialContext for an http.Transport whose proxy is
// the parent's egress: every connection goes to addr, where the parent
// answers an HTTP CONNECT for an allow-listed host:port and then relays
// bytes. TLS to the target runs inside the enclave, over that tunnel.
func EgressDialer(addr channel.Addr) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return channel.Dial(ctx, addr)
	}
}

// EgressTransport is an http.Transport for a service reached through the
// parent's egress (KMS, STS): every connection is a CONNECT tunnel opened
// by dial, and TLS to serverName, verified under roots alone, runs inside
// the enclave over it, so the parent relays ciphertext only. maxConns
// bounds the connections at once (0: no bound).
func EgressTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), roots *x509.CertPool, serverName string, maxConns int) *http.Transport {
	return &http.Transport{
		// The proxy's name is never resolved: dial reaches the egress.
		Proxy:               http.ProxyURL(&url.URL{Scheme: "http", Host: "parent-egress.invalid:80"}),
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, ServerName: serverName},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     30 * time.Second,
		MaxIdleConns:        2,
		MaxConnsPerHost:     maxConns,
	}
}

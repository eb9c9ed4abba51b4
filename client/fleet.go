package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Resolver resolves a host name into its addresses; *net.Resolver (and
// net.DefaultResolver, the default) is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// ErrNoReplica: no replica could be called: every endpoint is a name that
// did not resolve (the error also wraps why).
var ErrNoReplica = errors.New("client: no replica to call")

// A replica is one parent the client calls: an endpoint given as an
// address, or one address of an endpoint given as a DNS name. It has its
// own connections and the attested key requests to it are signed for.
type replica struct {
	ep   *endpoint
	addr string // the address dialled for a DNS endpoint; "" otherwise
	base string // the base URL requests go to; keeps the DNS name
	http *http.Client
	// traced: the transport reports GotConn, so a request that never got
	// a connection is known never to have left (see sendAt).
	traced bool

	// attestMu serialises attestation here, and attestGen counts the
	// successful ones, so a burst of answers from an unknown key attests
	// once.
	attestMu  sync.Mutex
	attestGen atomic.Uint64

	mu sync.Mutex
	// kid is the key requests to this replica are signed for: the one
	// attested here last, or the one that last refused a request here as
	// meant for another instance.
	kid string
	// down: a call failed here; no call comes before downUntil, then one
	// at a time (probing) until one succeeds.
	down      bool
	downUntil time.Time
	backoff   time.Duration
	probing   bool
	active    bool // still in its endpoint's resolution

	inFlight                                        atomic.Int64
	calls, retries, failures, refused, attestations atomic.Uint64
}

// name is the replica as logs and Stats show it.
func (r *replica) name() string {
	if r.addr == "" {
		return r.ep.raw
	}
	return r.ep.raw + " (" + r.addr + ")"
}

// usable reports whether a call may go to r now; the caller holds r.mu.
func (r *replica) usable(now time.Time) bool {
	return !r.down || (!now.Before(r.downUntil) && !r.probing)
}

// An endpoint is one base URL of Config.URL or Config.Endpoints.
type endpoint struct {
	raw        string // as configured, without a trailing slash
	scheme     string
	host, port string
	path       string
	// resolve: host is a DNS name, resolved into one replica per address.
	resolve bool
	// resolveMu serialises resolutions of this name.
	resolveMu sync.Mutex

	// Under fleet.mu:
	replicas    []*replica
	resolved    bool // resolved at least once
	lastResolve time.Time
	nextResolve time.Time
	lastErr     error
}

// parseEndpoint checks a base URL: https, a host, an optional port and
// path, nothing else.
func parseEndpoint(raw string) (*endpoint, error) {
	trimmed := strings.TrimRight(raw, "/")
	u, err := url.Parse(trimmed)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("client: endpoint %q: want https://HOST[:PORT][/PATH]", raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("client: endpoint %q: want https://HOST[:PORT][/PATH]", raw)
	}
	ep := &endpoint{raw: trimmed, scheme: u.Scheme, host: host, port: port, path: u.EscapedPath()}
	if _, err := netip.ParseAddr(host); err != nil {
		ep.resolve = true
	}
	return ep, nil
}

// fleet is the replicas of a client.
type fleet struct {
	endpoints []*endpoint
	resolver  Resolver
	interval  time.Duration
	// newReplica makes the replica of ep that dials addr ("" for the
	// endpoint's own host).
	newReplica func(ep *endpoint, addr string) *replica
	// expand: DNS names are resolved here (the transport is an
	// *http.Transport without a proxy, so a replica can pin its dial).
	expand bool

	mu       sync.Mutex
	replicas []*replica // every active replica, in endpoint order
	retired  []*replica // dropped by a DNS answer, newest last, for Stats
	next     uint64     // round robin
}

// build makes the replicas of the endpoints given as addresses (and, when
// names are not expanded, as names), leaving names to resolve.
func (f *fleet) build() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ep := range f.endpoints {
		if ep.resolve && f.expand {
			continue
		}
		ep.resolve = false
		r := f.newReplica(ep, "")
		r.active = true
		ep.replicas, ep.resolved = []*replica{r}, true
	}
	f.rebuild()
}

// rebuild lists every endpoint's replicas; the caller holds f.mu.
func (f *fleet) rebuild() {
	f.replicas = f.replicas[:0]
	for _, ep := range f.endpoints {
		f.replicas = append(f.replicas, ep.replicas...)
	}
	if len(f.replicas) > maxReplicas {
		f.replicas = f.replicas[:maxReplicas]
	}
}

// refresh resolves the names that are due: a name never resolved is
// waited for; one resolved before is resolved by one caller while the
// others carry on with its last answer.
func (f *fleet) refresh(ctx context.Context, now time.Time, log *slog.Logger) {
	for _, ep := range f.endpoints {
		if !ep.resolve {
			continue
		}
		f.mu.Lock()
		due, first := !now.Before(ep.nextResolve), !ep.resolved
		f.mu.Unlock()
		if !due {
			continue
		}
		if first {
			ep.resolveMu.Lock()
		} else if !ep.resolveMu.TryLock() {
			continue
		}
		f.mu.Lock()
		due = !now.Before(ep.nextResolve)
		f.mu.Unlock()
		if due {
			f.resolveOne(ctx, ep, now, log)
		}
		ep.resolveMu.Unlock()
	}
}

// resolveOne resolves ep's name and replaces its replicas: an address
// still answered keeps its replica (its key, health and counters), a new
// one gets a new replica, and one no longer answered is retired. A failed
// resolution keeps the last answer.
func (f *fleet) resolveOne(ctx context.Context, ep *endpoint, now time.Time, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	answer, err := f.resolver.LookupHost(rctx, ep.host)
	cancel()
	var addrs []string
	for _, a := range answer {
		ip, perr := netip.ParseAddr(a)
		if perr != nil {
			continue // a resolver's answer is not trusted to be well formed
		}
		addrs = append(addrs, ip.Unmap().String())
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if len(addrs) > maxReplicas {
		addrs = addrs[:maxReplicas]
	}
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("%s: no address", ep.host)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ep.lastResolve = now
	ep.nextResolve = now.Add(f.interval)
	if err != nil {
		ep.lastErr = fmt.Errorf("resolving %s: %w", ep.host, err)
		ep.nextResolve = now.Add(minResolveGap)
		if log != nil {
			log.Warn("client: resolution failed", "endpoint", ep.raw, "err", err)
		}
		return
	}
	ep.lastErr = nil
	old := map[string]*replica{}
	for _, r := range ep.replicas {
		old[r.addr] = r
	}
	var next []*replica
	for _, a := range addrs {
		r, ok := old[a]
		if ok {
			delete(old, a)
		} else {
			r = f.newReplica(ep, a)
			r.mu.Lock()
			r.active = true
			r.mu.Unlock()
		}
		next = append(next, r)
	}
	for _, r := range ep.replicas { // in order, so Stats stay stable
		if _, gone := old[r.addr]; gone {
			r.mu.Lock()
			r.active = false
			r.mu.Unlock()
			f.retired = append(f.retired, r)
		}
	}
	if n := len(f.retired) - maxRetired; n > 0 {
		f.retired = slices.Delete(f.retired, 0, n)
	}
	changed := !ep.resolved || len(old) > 0 || len(next) != len(ep.replicas)
	ep.replicas, ep.resolved = next, true
	f.rebuild()
	if changed && log != nil {
		log.Info("client: endpoint resolved", "endpoint", ep.raw, "addresses", addrs)
	}
}

// failed makes r's name due for resolution again soon: a replica that
// fails may have been replaced under the name.
func (f *fleet) failed(r *replica) {
	if !r.ep.resolve {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if soon := r.ep.lastResolve.Add(minResolveGap); soon.Before(r.ep.nextResolve) {
		r.ep.nextResolve = soon
	}
}

// pick chooses the replica for a call's next attempt, never one of tried:
// the usable one with the fewest calls in flight, ties broken round
// robin. A replica down whose backoff has passed is usable by one call at
// a time, its probe. When every untried replica is down, the one that
// comes back first is tried anyway: trying is no worse than failing
// unasked.
func (f *fleet) pick(ctx context.Context, now time.Time, tried []*replica, log *slog.Logger) (*replica, error) {
	f.refresh(ctx, now, log)
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.replicas)
	if n == 0 {
		var errs []error
		for _, ep := range f.endpoints {
			errs = append(errs, ep.lastErr)
		}
		return nil, fmt.Errorf("%w: %w", ErrNoReplica, errors.Join(errs...))
	}
	start := int(f.next % uint64(n))
	f.next++
	var best, fallback *replica
	var bestLoad int64
	var fallbackAt time.Time
	for i := range n {
		r := f.replicas[(start+i)%n]
		if slices.Contains(tried, r) {
			continue
		}
		r.mu.Lock()
		usable, at := r.usable(now), r.downUntil
		r.mu.Unlock()
		if !usable {
			if fallback == nil || at.Before(fallbackAt) {
				fallback, fallbackAt = r, at
			}
			continue
		}
		if load := r.inFlight.Load(); best == nil || load < bestLoad {
			best, bestLoad = r, load
		}
	}
	if best == nil {
		best = fallback
	}
	if best == nil {
		return nil, errAllTried
	}
	best.mu.Lock()
	if best.down {
		best.probing = true
	}
	best.mu.Unlock()
	return best, nil
}

// errAllTried: a call tried every replica.
var errAllTried = errors.New("client: every replica was tried")

// all returns the active replicas and then the retired ones.
func (f *fleet) all() []*replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(slices.Clone(f.replicas), f.retired...)
}

// ok records that r answered: it is up again.
func (r *replica) ok(log *slog.Logger) {
	r.mu.Lock()
	was := r.down
	r.down, r.probing, r.backoff, r.downUntil = false, false, 0, time.Time{}
	r.mu.Unlock()
	if was && log != nil {
		log.Info("client: replica is back", "replica", r.name())
	}
}

// release ends r's probe, if this call was it, without judging r.
func (r *replica) release() {
	r.mu.Lock()
	r.probing = false
	r.mu.Unlock()
}

// fail marks r down: left alone for its backoff, which starts at min and
// doubles with each failure up to max.
func (r *replica) fail(now time.Time, min, max time.Duration, err error, log *slog.Logger) {
	r.failures.Add(1)
	r.mu.Lock()
	was := r.down
	switch {
	case r.backoff == 0:
		r.backoff = min
	case r.down && !now.Before(r.downUntil):
		r.backoff = r.backoff * 2 // a failed probe
	}
	if r.backoff > max {
		r.backoff = max
	}
	r.down, r.probing = true, false
	if until := now.Add(r.backoff); until.After(r.downUntil) {
		r.downUntil = until
	}
	backoff := r.backoff
	r.mu.Unlock()
	if !was && log != nil {
		log.Warn("client: replica down", "replica", r.name(), "retry_in", backoff, "err", err)
	}
}

// target is the kid to sign requests to r for, "" when none is trusted.
func (c *Client) target(r *replica) string {
	r.mu.Lock()
	kid := r.kid
	r.mu.Unlock()
	if kid != "" && c.key(kid) != nil {
		return kid
	}
	return ""
}

// retarget makes kid, an attested key, the one requests to r are signed
// for.
func (c *Client) retarget(r *replica, kid string) {
	if c.key(kid) == nil {
		return
	}
	r.mu.Lock()
	r.kid = kid
	r.mu.Unlock()
}

// pinDial returns a copy of t that dials addr whatever the request's host:
// the URL (and so the Host header and the TLS server name) keeps the DNS
// name, the connection goes to one of its addresses.
func pinDial(t *http.Transport, addr, port string, dialTimeout time.Duration) *http.Transport {
	pinned := t.Clone()
	to := net.JoinHostPort(addr, port)
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	pinned.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, to)
	}
	return pinned
}

package client

// Stats are a client's counters since it was made.
type Stats struct {
	// Calls counts calls: Call and the typed methods, Prepare, Attest.
	Calls uint64
	// Retries counts attempts after a call's first, on another replica or
	// signed again for another instance.
	Retries uint64
	// RetriesDenied counts calls that stopped for want of a retry token.
	RetriesDenied uint64
	// Replicas are the replicas in endpoint order (addresses of a DNS
	// endpoint sorted), then those a later DNS answer dropped.
	Replicas []ReplicaStats
}

// ReplicaStats are one replica's counters.
type ReplicaStats struct {
	// Endpoint is the configured base URL; Address the address dialled
	// when it is a DNS name, "" otherwise.
	Endpoint, Address string
	// KeyID is the attested key requests to it are signed for, "" before
	// it was attested.
	KeyID string
	// Active is false once a DNS answer dropped the address.
	Active bool
	// Down: a call failed here and it has not answered since.
	Down bool
	// InFlight counts attempts under way here.
	InFlight int64
	// Requests counts signed requests sent here, Retries those of them
	// that were a call's retry, Attestations the documents fetched.
	Requests, Retries, Attestations uint64
	// Failures counts attempts that failed here as a replica fails (no
	// answer, a 503, signer_disabled, a refused document or answer);
	// Refused counts answers refused as not the attested enclave's.
	Failures, Refused uint64
}

// Stats returns the client's counters, for tests and reports.
func (c *Client) Stats() Stats {
	s := Stats{Calls: c.calls.Load(), Retries: c.retries.Load(), RetriesDenied: c.denied.Load()}
	for _, r := range c.fleet.all() {
		r.mu.Lock()
		rs := ReplicaStats{Endpoint: r.ep.raw, Address: r.addr, KeyID: r.kid, Active: r.active, Down: r.down}
		r.mu.Unlock()
		rs.InFlight = r.inFlight.Load()
		rs.Requests, rs.Retries, rs.Attestations = r.calls.Load(), r.retries.Load(), r.attestations.Load()
		rs.Failures, rs.Refused = r.failures.Load(), r.refused.Load()
		s.Replicas = append(s.Replicas, rs)
	}
	return s
}

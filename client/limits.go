package client

import "time"

// Defaults of Config.
const (
	// DefaultMaxAge bounds the age of an attestation document the client
	// accepts when the policy sets none.
	DefaultMaxAge = 5 * time.Minute
	// DefaultKeyLifetime is how long an attested key is trusted.
	DefaultKeyLifetime = time.Hour
	// DefaultMaxKeys bounds the attested keys a client remembers: two for
	// each of maxReplicas replicas (one boot and the next).
	DefaultMaxKeys = 2 * maxReplicas
	// DefaultResolveInterval is how often a DNS endpoint is resolved again
	// when nothing fails.
	DefaultResolveInterval = 30 * time.Second
	// DefaultDialTimeout bounds a connection attempt of the default
	// transport, so a replica that drops packets costs a call this long,
	// not its whole deadline, before it fails over.
	DefaultDialTimeout = 5 * time.Second
)

// Defaults of RetryPolicy.
const (
	// DefaultMaxAttempts bounds the attempts of one call, the first
	// included.
	DefaultMaxAttempts = 3
	// DefaultRetryRatio is the retry tokens each call earns: retries are
	// at most a tenth of the calls, plus the burst.
	DefaultRetryRatio = 0.1
	// DefaultRetryBurst is the retry tokens the bucket holds, and starts
	// with: what a sudden failure of one replica under load may spend at
	// once (its calls in flight) before the ratio is all there is.
	DefaultRetryBurst = 20
	// DefaultMinBackoff is how long a replica that failed is left alone
	// before a call probes it again; it doubles with each failed probe.
	DefaultMinBackoff = time.Second
	// DefaultMaxBackoff bounds the doubling.
	DefaultMaxBackoff = 30 * time.Second
)

// Bounds.
const (
	// maxReplicas bounds the replicas of a client, over all its endpoints:
	// a DNS answer with more addresses is cut to the first ones in order.
	maxReplicas = 64
	// maxRetired bounds the replicas kept for Stats after a DNS answer
	// dropped them.
	maxRetired = 64
	// maxEndpoints bounds Config.Endpoints.
	maxEndpoints = maxReplicas
	// minResolveGap is how soon after a resolution a failure may make the
	// client resolve a name again.
	minResolveGap = time.Second
	// resolveTimeout bounds one resolution.
	resolveTimeout = 5 * time.Second
)

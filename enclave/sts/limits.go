package sts

import "time"

// Bounds of the client.
const (
	// MaxAnswerSize caps the bytes read of any one STS answer, error
	// answers included (after the transport's own gzip decoding). STS's
	// answer to AssumeRoleWithWebIdentity is a few KiB.
	MaxAnswerSize = 64 << 10

	// DefaultTimeout bounds one exchange, retries included, when
	// Options.Timeout is 0: under the parent's default --timeout (10s),
	// so that the caller gets sts_unavailable, not the parent's timeout.
	DefaultTimeout = 5 * time.Second
	// MaxConns bounds the connections to STS at once (tunnels through the
	// egress, TLS handshakes): Exchange waits for one, within its timeout.
	MaxConns = 8
	// maxAttempts is the SDK's attempts at one exchange: a 5xx, a
	// throttling answer, IDPCommunicationError or a failed connection is
	// tried again, up to this many times in all, within the timeout.
	maxAttempts = 3
	// maxBackoff caps the SDK's wait between attempts.
	maxBackoff = 2 * time.Second

	// DefaultRegion is the SDK's region when Options.Region is empty. The
	// call is unsigned, so the region only names the endpoint's partition
	// to the SDK; the endpoint itself is always Options.Endpoint.
	DefaultRegion = "us-east-1"

	// Request bounds, STS's own: a role ARN of 20 to 2048 characters, a
	// session name of 2 to 64 of [A-Za-z0-9_+=,.@-], a token of 4 to 20000
	// bytes, a session policy of at most 2048 characters (STS judges its
	// content), a duration of 900 to 43200 seconds (0: STS's default).
	minRoleARN, maxRoleARN         = 20, 2048
	minSessionName, maxSessionName = 2, 64
	minToken, maxToken             = 4, 20000
	maxPolicy                      = 2048
	minDuration, maxDuration       = 900, 43200

	// maxCode bounds an STS error code quoted in an error.
	maxCode = 64
	// maxAccessKeyID bounds the access key id (AWS: 16 to 128 of \w).
	minAccessKeyID, maxAccessKeyID = 16, 128
)

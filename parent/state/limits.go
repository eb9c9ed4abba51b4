package state

import "time"

// MaxBlob bounds one stored sealed keyring, in either store.
const MaxBlob = 64 << 10

// Bounds of the S3 store.
const (
	// DefaultS3Timeout bounds each S3 request (the SDK's own retries of it
	// included) when S3Options.Timeout is zero.
	DefaultS3Timeout = 10 * time.Second
	// maxPrefix bounds the key prefix of a store.
	maxPrefix = 512
	// maxListPage is the most keys S3 returns in one ListObjectsV2 page.
	maxListPage = 1000
	// maxListPages bounds one List: a prefix crowded with foreign keys
	// ends the listing there rather than page on without end.
	maxListPages = 16
	// putConflictAttempts bounds the tries of one Put that S3 answers 409
	// ConditionalRequestConflict (a concurrent conditional write of the
	// same key was in progress).
	putConflictAttempts = 6
	// putBackoffBase and putBackoffMax shape the wait between those tries:
	// doubling from the base, capped, with full jitter.
	putBackoffBase = 50 * time.Millisecond
	putBackoffMax  = time.Second
)

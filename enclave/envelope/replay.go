package envelope

import (
	"encoding/binary"
	"sync"
	"time"
)

// replayKey is the first 8 bytes of SHA-256(caller thumbprint ‖ nonce). Two
// requests whose keys collide are not both accepted: a collision can only
// refuse a genuine request as replayed (about n/2^64 for n remembered
// nonces, 2^-44 with a million), never accept a replay, and a caller
// cannot aim one at another caller's nonces, which it does not know.
type replayKey uint64

func replayKeyOf(sum []byte) replayKey { return replayKey(binary.LittleEndian.Uint64(sum)) }

// Full says why Replay.Use had no room.
type Full uint8

const (
	// NotFull: the nonce was checked (and recorded if fresh).
	NotFull Full = iota
	// ShareFull: this caller's share of the current generation is used
	// up; other callers are not affected.
	ShareFull
	// CacheFull: the whole generation is full.
	CacheFull
)

// Replay remembers request nonces for as long as a request carrying them
// could still be inside the replay window, in bounded memory.
//
// A request accepted at time t has |iat - t| ≤ window, so a replay of it can
// pass the window check only until t + 2·window. Nonces are kept in two
// generations that rotate every 2·window: each nonce is remembered for at
// least 2·window and at most 4·window. When a generation is full, new
// requests are refused (fail closed) until it rotates.
//
// Each caller (certificate thumbprint) may fill at most its share of a
// generation, so one caller that sends as fast as it can, or holds back
// requests to send in a burst, refuses only itself; the total bounds memory.
type Replay struct {
	mu        sync.Mutex
	span      time.Duration
	limit     int
	share     int
	rotated   time.Time
	current   map[replayKey]struct{}
	previous  map[replayKey]struct{}
	perCaller map[[32]byte]int // entries each caller holds in current
}

// NewReplay returns a cache for the given window holding at most limit
// nonces per generation, and at most share of them per caller.
func NewReplay(window time.Duration, limit, share int, now time.Time) *Replay {
	if share <= 0 || share > limit {
		share = limit
	}
	return &Replay{span: 2 * window, limit: limit, share: share, rotated: now,
		current: map[replayKey]struct{}{}, previous: map[replayKey]struct{}{}, perCaller: map[[32]byte]int{}}
}

// Use records key for caller at time now. It reports fresh false if key was
// already used, and why there was no room to remember it.
func (r *Replay) Use(caller [32]byte, key replayKey, now time.Time) (fresh bool, full Full) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for now.Sub(r.rotated) >= r.span {
		r.previous, r.current = r.current, make(map[replayKey]struct{}, len(r.current))
		r.perCaller = map[[32]byte]int{}
		r.rotated = r.rotated.Add(r.span)
		if now.Sub(r.rotated) >= 2*r.span {
			r.rotated = now // long idle: both generations are stale
			r.previous = map[replayKey]struct{}{}
		}
	}
	if _, ok := r.current[key]; ok {
		return false, NotFull
	}
	if _, ok := r.previous[key]; ok {
		return false, NotFull
	}
	if len(r.current) >= r.limit {
		return false, CacheFull
	}
	n := r.perCaller[caller]
	if n >= r.share {
		return false, ShareFull
	}
	r.perCaller[caller] = n + 1
	r.current[key] = struct{}{}
	return true, NotFull
}

package envelope

import (
	"sync"
	"time"
)

// replayKey is the first 16 bytes of SHA-256(caller thumbprint ‖ nonce):
// half the memory of the full hash, and a collision among even 2^32
// remembered nonces has probability about 2^-64.
type replayKey [16]byte

// Replay remembers request nonces for as long as a request carrying them
// could still be inside the replay window, in bounded memory.
//
// A request accepted at time t has |iat - t| ≤ window, so a replay of it can
// pass the window check only until t + 2·window. Nonces are kept in two
// generations that rotate every 2·window: each nonce is remembered for at
// least 2·window and at most 4·window. When a generation is full, new
// requests are refused (fail closed) until it rotates.
type Replay struct {
	mu       sync.Mutex
	span     time.Duration
	limit    int
	rotated  time.Time
	current  map[replayKey]struct{}
	previous map[replayKey]struct{}
}

// NewReplay returns a cache for the given window holding at most limit
// nonces per generation.
func NewReplay(window time.Duration, limit int, now time.Time) *Replay {
	return &Replay{span: 2 * window, limit: limit, rotated: now,
		current: map[replayKey]struct{}{}, previous: map[replayKey]struct{}{}}
}

// Use records key at time now. It reports false if key was already used,
// and full if there is no room to remember it.
func (r *Replay) Use(key replayKey, now time.Time) (fresh, full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for now.Sub(r.rotated) >= r.span {
		r.previous, r.current = r.current, make(map[replayKey]struct{}, len(r.current))
		r.rotated = r.rotated.Add(r.span)
		if now.Sub(r.rotated) >= 2*r.span {
			r.rotated = now // long idle: both generations are stale
			r.previous = map[replayKey]struct{}{}
		}
	}
	if _, ok := r.current[key]; ok {
		return false, false
	}
	if _, ok := r.previous[key]; ok {
		return false, false
	}
	if len(r.current) >= r.limit {
		return false, true
	}
	r.current[key] = struct{}{}
	return true, false
}

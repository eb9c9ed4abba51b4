package envelope

import (
	"encoding/binary"
	"sync"
	"time"
)

// replayKey is the first 8 bytes of SHA-256(caller thumbprint ‖ nonce). Two
// requests whose keys collide are not both accepted: a collision can only
// refuse a genuine request as replayed (about n/2^64 for n remembered
// nonces, 2^-42 with four million), never accept a replay, and a caller
// cannot aim one at another caller's nonces, which it does not know.
type replayKey uint64

func replayKeyOf(sum []byte) replayKey { return replayKey(binary.LittleEndian.Uint64(sum)) }

// Full says why Replay.Use had no room.
type Full uint8

const (
	// NotFull: the nonce was checked (and recorded if fresh).
	NotFull Full = iota
	// CallerFull: this caller's (certificate's) share of the current
	// generation is used up; no other caller is affected.
	CallerFull
	// RoleFull: the callers of this role together used up the role's
	// share; callers of other roles are not affected.
	RoleFull
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
// Shares keep one caller from refusing the others: each certificate may
// fill at most callerShare of a generation, and all callers of one role
// together at most roleShare. With roleShare at most limit divided by the
// number of roles, no role can fill the cache for another, and a caller
// that sends as fast as it can, or holds back requests to send in a burst,
// refuses only itself (and, with other certificates of its role, its role).
type Replay struct {
	mu          sync.Mutex
	span        time.Duration
	limit       int
	roleShare   int
	callerShare int
	rotated     time.Time
	current     map[replayKey]struct{}
	previous    map[replayKey]struct{}
	perRole     map[string]int   // entries each role holds in current
	perCaller   map[[32]byte]int // entries each caller holds in current
}

// NewReplay returns a cache for the given window holding at most limit
// nonces per generation, at most roleShare of them for the callers of one
// role and callerShare for one caller. A share outside 1..limit is limit.
func NewReplay(window time.Duration, limit, roleShare, callerShare int, now time.Time) *Replay {
	if roleShare <= 0 || roleShare > limit {
		roleShare = limit
	}
	if callerShare <= 0 || callerShare > limit {
		callerShare = limit
	}
	r := &Replay{span: 2 * window, limit: limit, roleShare: roleShare, callerShare: callerShare, rotated: now,
		previous: map[replayKey]struct{}{}}
	r.fresh(0)
	return r
}

func (r *Replay) fresh(size int) {
	r.current = make(map[replayKey]struct{}, size)
	r.perRole = map[string]int{}
	r.perCaller = map[[32]byte]int{}
}

// Use records key for the caller (a certificate thumbprint, of role) at
// time now. It reports fresh false if key was already used, and why there
// was no room to remember it.
func (r *Replay) Use(role string, caller [32]byte, key replayKey, now time.Time) (fresh bool, full Full) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for now.Sub(r.rotated) >= r.span {
		r.previous = r.current
		r.fresh(len(r.previous))
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
	nr := r.perRole[role]
	if nr >= r.roleShare {
		return false, RoleFull
	}
	nc := r.perCaller[caller]
	if nc >= r.callerShare {
		return false, CallerFull
	}
	r.perRole[role] = nr + 1
	r.perCaller[caller] = nc + 1
	r.current[key] = struct{}{}
	return true, NotFull
}

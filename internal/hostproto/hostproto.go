// Package hostproto is what the enclave and its parent exchange on the host
// channel: the routes the parent serves to the enclave, their bodies, and
// the instance role's credentials. Both binaries import it; it holds no
// decision (the enclave checks every answer, enclave/host).
package hostproto

// Routes the parent serves to the enclave.
const (
	RouteStateList   = "state/list"
	RouteStateGet    = "state/get"
	RouteStatePut    = "state/put"
	RouteCredentials = "aws/credentials"
)

// InFlight is how many calls one host channel connection carries at once:
// the parent's host service admits that many, and the enclave sends no
// more. The enclave's calls to its parent are few at a time (custody makes
// one at a time, sealing asks for credentials beside it).
const InFlight = 16

// Bounds on what the enclave accepts from the parent.
const (
	MaxSequences       = 4096
	MaxBlob            = 64 << 10
	maxCredentialsJSON = 16 << 10
)

// ListRequest is the body of a state/list call: the sequences above After
// are listed, oldest first. The enclave lists from the newest sequence it
// has examined, so a store with many sequences is read a page at a time
// and never from its newest end (where anyone who can write the bucket
// could pile sequences above the lineage).
type ListRequest struct {
	After uint64 `json:"after"`
}

// SequenceList is the body of a state/list reply: stored sequences above
// the call's After, ascending, at most MaxSequences. More says the listing
// stopped before the store's end (the bound, or the store's own page
// bound): the caller lists again after the last one.
type SequenceList struct {
	Sequences []uint64 `json:"sequences"`
	More      bool     `json:"more"`
}

// SequenceRef is the body of a state/get call and a state/put reply.
type SequenceRef struct {
	Seq uint64 `json:"seq"`
}

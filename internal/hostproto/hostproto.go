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

// Bounds on what the enclave accepts from the parent.
const (
	MaxSequences       = 4096
	MaxBlob            = 64 << 10
	maxCredentialsJSON = 16 << 10
)

// SequenceList is the body of a state/list reply.
type SequenceList struct {
	Sequences []uint64 `json:"sequences"`
}

// SequenceRef is the body of a state/get call and a state/put reply.
type SequenceRef struct {
	Seq uint64 `json:"seq"`
}

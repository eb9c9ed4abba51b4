// Package channel is the parent ↔ enclave protocol, imported by both
// binaries: length-prefixed CBOR frames, multiplexed by request id over a
// small pool of connections.
//
// Each frame is a 4-byte big-endian length followed by that many bytes of
// CBOR (a map with small integer keys, see [Frame]). The parent sends calls;
// the enclave answers each with one reply carrying the same id, in any order.
// Decoding is strict (duplicate keys, unknown keys, tags and indefinite
// lengths are refused) and bounded (frame size, chain length, in-flight calls
// per connection, per-call deadline, connections open, the time a frame may
// take once it has begun). A reader's buffer grows with the bytes that
// arrive, never ahead of them to what a length prefix declares. A connection
// that sends a malformed frame, or stalls in one, is closed: a
// length-prefixed stream cannot resynchronise.
//
// Addresses are URLs: vsock://CID:PORT (in an enclave), unix:///path and
// tcp://host:port (development and tests).
package channel

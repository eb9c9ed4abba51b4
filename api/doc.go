// Package api is nitro-signer's wire contract: every route with the types
// of its params and result, the closed list of error codes with their HTTP
// statuses, the error body, the attestation user_data schema, and the
// caller's half of a key import. It is what a caller, the parent and the
// enclave agree on, and it imports only the standard library, so that a
// caller links none of the enclave's verifiers.
//
// A method is a [Method]: a route bound once to its params type P and its
// result type R. The client calls a Method with a *P and gets a *R; the
// enclave binds a handler taking a *P and returning a *R to the same
// Method. A mismatch between the two sides does not compile.
//
// A call is an HTTPS POST of a request envelope (a compact JWS whose
// payload carries the route, the params as a P in JSON, a nonce, iat, aud
// and the attested enclave's key id) to /<route>; the answer is a response
// envelope signed by the enclave's attested key, whose payload carries the
// result as an R or a refusal {"code", "message"} (an [Error]). Refusals
// made before anything could be signed are plain [ErrorBody] JSON.
// docs/protocol.md describes the envelopes; package envelope signs and
// verifies them.
//
// JSON conventions: byte strings are hex ("0x" optional on input, written
// with "0x") unless a field says otherwise; []byte fields are padded
// standard base64, as encoding/json writes them; omni accounts are 64 hex
// characters without "0x"; addresses the signer returns are lowercase hex,
// and a SIWE message must name its address EIP-55 checksummed. The enclave decodes
// params strictly: no unknown fields, no duplicate keys, no two keys equal
// under Unicode case folding, each key exactly its field's name.
package api

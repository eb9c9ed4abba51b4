// Package sts is the enclave's client of AWS STS AssumeRoleWithWebIdentity:
// it exchanges a web identity token the enclave issued for a role's
// temporary credentials.
//
// Trust. STS is reached through the parent's egress proxy, an HTTP CONNECT
// proxy that relays bytes and nothing more; TLS runs inside the enclave and
// ends at STS. The endpoint's certificate must chain to Roots, which come
// from the measured configuration, and must name the endpoint's host, so a
// parent that redirects the tunnel elsewhere gets a failed handshake before
// one byte of the request is sent. The token, the request and the
// credentials STS answers with are never visible to the parent: it sees the
// target host:port, the sizes and the timing of ciphertext, and can drop or
// delay the exchange (which the caller sees as ErrUnavailable), nothing
// else.
//
// The call is unsigned (AssumeRoleWithWebIdentity needs no AWS
// credentials; the token is the proof). The SDK's logger is off, every
// answer is read to at most MaxAnswerSize bytes, redirects are not
// followed, and an error never quotes STS's message, which can repeat the
// token's claims: a refusal is a RefusedError naming STS's error code and
// HTTP status only.
//
// Credentials and Request keep their secrets (the secret access key, the
// session token, the web identity token) out of fmt, log/slog and
// encoding/json. They are exported string fields, so a caller that copies
// one into its own value, or holds a Credentials in an unexported field of
// a struct it prints, must keep them out of its own output.
package sts

package api

import (
	"errors"
	"fmt"
)

// Code is a wire error code. The list is closed: a code outside it is a
// bug on whichever side sent it. docs/protocol.md has it with each code's
// HTTP status and who answers it (the enclave, signed, or the parent,
// plain).
type Code string

const (
	CodeBadRequest         Code = "bad_request"              // 400 malformed envelope or params; unsigned for a bad attestation nonce or an unreadable body
	CodeInvalidOmni        Code = "invalid_omni_account"     // 400 /dev: omni not 64 hex characters
	CodeInvalidMessageHex  Code = "invalid_message_hex"      // 400 /dev: message_hex not hex
	CodeInvalidTypedData   Code = "invalid_typed_data"       // 400 /dev: typed data refused
	CodeInvalidSIWE        Code = "invalid_siwe_message"     // 400 not a canonical EIP-4361 message
	CodeInvalidAuditRow    Code = "invalid_audit_row"        // 400 not deterministic CBOR
	CodeAddressMismatch    Code = "address_mismatch"         // 400 the message names another address
	CodeMessageExpired     Code = "message_expired"          // 400 past its expiration time
	CodeMessageNotYetValid Code = "message_not_yet_valid"    // 400 before its not-before time
	CodeIssuedInFuture     Code = "issued_in_future"         // 400 issued-at beyond the clock skew
	CodePolicyDenied       Code = "policy_denied"            // 403 domain, chain id or contract not allowed
	CodeUnauthenticated    Code = "unauthenticated"          // 401 signature, certificate or thumbprint wrong
	CodeStale              Code = "stale_request"            // 401 iat outside the replay window
	CodeReplayed           Code = "replayed"                 // 401 nonce already used
	CodeWrongAudience      Code = "wrong_audience"           // 401 aud is not this signer
	CodeWrongEnclave       Code = "wrong_enclave"            // 421 signed for another enclave instance: attest again and re-sign
	CodeUnauthorized       Code = "unauthorized"             // 403 role may not call this method (/dev: also unauthenticated, stale_request, replayed, wrong_audience)
	CodeUnknownMethod      Code = "unknown_method"           // 404 no such method on this surface
	CodeUnknownEpoch       Code = "unknown_epoch"            // 404 the keyring does not hold that epoch
	CodeSignerDisabled     Code = "signer_disabled"          // 503 no keys loaded
	CodeOverloaded         Code = "overloaded"               // 503 too many calls in flight
	CodeEnclaveUnavailable Code = "enclave_unavailable"      // 503 parent: enclave not connected
	CodeTimeout            Code = "timeout"                  // 504 deadline passed
	CodeBodyTooLarge       Code = "body_too_large"           // 413 parent: body over the limit
	CodeNotFound           Code = "not_found"                // 404 parent: no such route
	CodeMethodNotAllowed   Code = "method_not_allowed"       // 405 parent: wrong HTTP method
	CodeInternal           Code = "internal"                 // 500 a bug or a failed dependency
	CodeKeyringNotEmpty    Code = "keyring_not_empty"        // 409 import into a keyring that has (or had sealed) keys
	CodeRollback           Code = "rollback"                 // 409 a peer's keyring is older than or diverges from this one
	CodePeerRefused        Code = "peer_attestation_refused" // 403 a peer's attestation failed verification
	CodeStateUnavailable   Code = "state_unavailable"        // 503 the keyring could not be sealed and stored
	CodeStateConflict      Code = "state_conflict"           // 409 another replica's change won the sequence: this one was discarded, the winner adopted if it opened; retry
	CodeAudienceNotAllowed Code = "audience_not_allowed"     // 403 the token's audience is not in the configuration's
	CodeTTLOutOfRange      Code = "ttl_out_of_range"         // 400 the lifetime asked for is outside the configured bounds
	CodeRoleNotAllowed     Code = "role_not_allowed"         // 403 the IAM role is not in the allow-list, or not for the caller's role
	CodeSTSRefused         Code = "sts_refused"              // 403 STS refused the exchange; the message's first word is STS's error code
	CodeSTSUnavailable     Code = "sts_unavailable"          // 503 STS gave no usable answer (unreachable, its certificate refused, a time-out, a 5xx, a malformed answer)
)

var statuses = map[Code]int{
	CodeBadRequest: 400, CodeInvalidOmni: 400, CodeInvalidMessageHex: 400, CodeInvalidTypedData: 400,
	CodeInvalidSIWE: 400, CodeInvalidAuditRow: 400, CodeAddressMismatch: 400, CodeMessageExpired: 400,
	CodeMessageNotYetValid: 400, CodeIssuedInFuture: 400, CodePolicyDenied: 403,
	CodeUnauthenticated: 401, CodeStale: 401, CodeReplayed: 401, CodeWrongAudience: 401, CodeWrongEnclave: 421,
	CodeUnauthorized: 403, CodeUnknownMethod: 404, CodeUnknownEpoch: 404,
	CodeSignerDisabled: 503, CodeOverloaded: 503, CodeEnclaveUnavailable: 503,
	CodeTimeout: 504, CodeBodyTooLarge: 413, CodeNotFound: 404, CodeMethodNotAllowed: 405,
	CodeInternal: 500, CodeKeyringNotEmpty: 409, CodeRollback: 409, CodePeerRefused: 403,
	CodeStateUnavailable: 503, CodeStateConflict: 409, CodeAudienceNotAllowed: 403, CodeTTLOutOfRange: 400,
	CodeRoleNotAllowed: 403, CodeSTSRefused: 403, CodeSTSUnavailable: 503,
}

// Codes returns every code, in no order, for documentation tests.
func Codes() []Code {
	out := make([]Code, 0, len(statuses))
	for c := range statuses {
		out = append(out, c)
	}
	return out
}

// Status is the HTTP status of a code; an unknown code is 500.
func (c Code) Status() int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return 500
}

// Error is a refusal with a wire code: what the enclave signs as an error
// result, and what a client returns for one. Its message never carries
// secret input.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: its *Error's, or internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorBody is the body of every unsigned error answer: the parent's own
// refusals, and the enclave's when it answers before it can sign (a
// refused attestation or readiness call, a full channel). A signed
// refusal is instead the response envelope's "error" member,
// {"code", "message"} (docs/protocol.md).
//
//	{"error":"overloaded","message":"parent at its concurrency limit"}
type ErrorBody struct {
	Error   Code   `json:"error"`
	Message string `json:"message"`
}

// Body is the error's wire body.
func (e *Error) Body() ErrorBody { return ErrorBody{Error: e.Code, Message: e.Message} }

package sts

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors of the exchange, for errors.Is.
var (
	// ErrUnavailable: no usable answer. The connection, the egress tunnel
	// or TLS failed (a certificate not under Roots included), the exchange
	// timed out, STS answered 5xx or throttled after the retries, or
	// IDPCommunicationError, or its answer was malformed, oversized,
	// incomplete or already expired. Trying again later may succeed. The
	// error's text names the reason, never a secret nor STS's words.
	ErrUnavailable = errors.New("sts: STS unavailable")
	// ErrRequest: the request is malformed (a field out of STS's bounds);
	// nothing was sent. The error names the field, never its value.
	ErrRequest = errors.New("sts: malformed request")
)

// UnavailableError is ErrUnavailable with its reason (errors.Is(err,
// ErrUnavailable) holds): a word an operator can act on — STS's own code
// (Throttling, IDPCommunicationError, InternalFailure, …, cleaned as
// RefusedError's), or Timeout, Certificate (not under Roots, or for
// another name), Egress (no tunnel, or it broke), Malformed, TooLarge,
// Incomplete, Expired.
type UnavailableError struct {
	Reason string
	detail string
}

func (e *UnavailableError) Error() string { return "sts: STS unavailable: " + e.detail }

// Unwrap makes the error ErrUnavailable for errors.Is.
func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// unavailable is an *UnavailableError; the detail names no secret and
// none of STS's words but its cleaned code.
func unavailable(reason, format string, args ...any) error {
	return &UnavailableError{Reason: reason, detail: fmt.Sprintf(format, args...)}
}

// RefusedError is STS's refusal of the exchange: an error answer with a
// 4xx status that is not throttling (InvalidIdentityToken,
// ExpiredTokenException, AccessDenied, IDPRejectedClaim,
// MalformedPolicyDocument, PackedPolicyTooLarge, RegionDisabledException,
// …). Trying the same request again will not help.
type RefusedError struct {
	// Code is STS's error code if it is 1 to 64 of [A-Za-z0-9._-],
	// otherwise "Unknown".
	Code string
	// Status is the HTTP status of the answer.
	Status int
}

func (e *RefusedError) Error() string {
	return "sts: STS refused the exchange: " + e.Code + " (HTTP " + strconv.Itoa(e.Status) + ")"
}

// codeUnknown stands for an error code that is absent or not of the
// expected characters.
const codeUnknown = "Unknown"

// cleanCode returns code if it is 1 to maxCode of [A-Za-z0-9._-], else
// "Unknown": a code is quoted in errors and logs, and comes from the
// answer's body. The SDK names an absent code "UnknownError", which is
// "Unknown" too.
func cleanCode(code string) string {
	if len(code) == 0 || len(code) > maxCode || code == "UnknownError" {
		return codeUnknown
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return codeUnknown
		}
	}
	return code
}

// unavailableCodes are the STS error codes that say "not now" rather than
// "no": the SDK retries them, and what remains is ErrUnavailable.
var unavailableCodes = map[string]bool{
	"IDPCommunicationError":     true,
	"Throttling":                true,
	"ThrottlingException":       true,
	"ThrottledException":        true,
	"RequestThrottled":          true,
	"RequestThrottledException": true,
	"TooManyRequestsException":  true,
	"RequestLimitExceeded":      true,
	"RequestTimeout":            true,
	"RequestTimeoutException":   true,
	"ServiceUnavailable":        true,
	"InternalFailure":           true,
}

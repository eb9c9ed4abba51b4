// Package nsmsim simulates the Nitro Secure Module for development builds.
//
// It compiles only under the nsmsim build tag, which the production image
// never sets; without the tag the package is this comment alone. Its
// documents are in exactly the real format (see package issuer) under a
// development root kept in a local state directory; PCR0 and PCR2 are
// measurements of the running binary, so a changed binary changes them, and
// the debug option zeroes PCR0..15 as a debug-mode enclave reports.
package nsmsim

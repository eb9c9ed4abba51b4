// Package e2e holds the end-to-end tests: they build the real enclave (with
// the simulated NSM) and parent binaries, start them on a Unix socket and
// loopback, and talk to them as a client — or as a hostile parent — would.
package e2e

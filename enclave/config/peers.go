package config

import (
	"fmt"

	"github.com/nitro-signer/nitro-signer/attestation"
)

// The configuration's peers are the releases, besides the image's own
// measurement, whose enclaves may send this one a keyring or receive one
// from it. The member is a releases.json document as it stands, so an
// operator copies the entries of the deployment's manifest into it and one
// parser (attestation.ParseReleases) reads both:
//
//	"peers": {"releases": [{"version": "v1.2.3", "pcr0": …, "not_before": …}, …]}
//
// A release matches as it does for a client: every PCR its match names,
// inside its not_before..not_after window (an expired release stops being a
// peer at its not_after).
//
// The configuration is baked into the image and measured, so an image can
// name as peers only releases that exist when it is built: the new image
// names the old one by its PCRs. The old image can name a release built
// after it only by the certificate that will sign it (PCR8, match
// ["pcr8"]), which is why a rollout of unsigned images moves the keyring by
// KMS unsealing, not by peer copy.

// parsePeers reads Peers with attestation.ParseReleases, which also
// refuses a release giving PCR0, PCR1, PCR2 or PCR8 as zeros: those are
// every debug-mode enclave's and, for PCR8, every unsigned image's, so such
// an entry would make any image a peer.
func (c *Config) parsePeers() error {
	if c.Peers == nil {
		return nil
	}
	rs, err := attestation.ParseReleases(c.Peers)
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	c.PeerReleases = rs
	return nil
}

// PeerMeasurements are what a peer's document may match besides this
// image's own PCRs: one measurement per release of Peers, none when it is
// absent.
func (c *Config) PeerMeasurements() []attestation.Measurement {
	if c.PeerReleases == nil {
		return nil
	}
	return c.PeerReleases.Measurements()
}

package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/config"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

func hex96(c byte) string { return strings.Repeat(string("0123456789abcdef"[c%16]), 96) }

// peerRelease is a releases.json entry, changed by mutate.
func peerRelease(version string, pcr0 byte, mutate func(map[string]any)) map[string]any {
	r := map[string]any{
		"version": version, "pcr0": hex96(pcr0), "pcr1": hex96(1), "pcr2": hex96(2),
		"eif_sha256": strings.Repeat("e", 64), "not_before": "2026-01-01T00:00:00Z",
	}
	if mutate != nil {
		mutate(r)
	}
	return r
}

func withPeers(t *testing.T, b []byte, peers any) []byte {
	return edit(t, b, func(m map[string]any) { m["peers"] = peers })
}

func TestParsePeers(t *testing.T) {
	b := devConfig(t)
	c, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.PeerReleases != nil || c.PeerMeasurements() != nil {
		t.Fatalf("a configuration without peers names %+v", c.PeerReleases)
	}
	in := withPeers(t, b, map[string]any{"releases": []any{
		peerRelease("v1", 0xa, func(r map[string]any) { r["not_after"] = "2027-01-01T00:00:00Z" }),
		peerRelease("v2", 0xb, func(r map[string]any) { r["pcr8"] = hex96(8); r["match"] = []string{"pcr8"} }),
	}})
	c, err = config.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	ms := c.PeerMeasurements()
	if len(ms) != 2 || ms[0].Name != "v1" || ms[1].Name != "v2" {
		t.Fatalf("peer measurements %+v", ms)
	}
	if !ms[0].NotAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || len(ms[0].PCRs) != 3 || ms[0].PCRs[0][0] != 0xaa {
		t.Fatalf("v1: %+v", ms[0])
	}
	if len(ms[1].PCRs) != 1 || ms[1].PCRs[8] == nil {
		t.Fatalf("v2 should pin PCR8 only: %+v", ms[1])
	}
	// The peers are part of the measured configuration.
	plain, _ := config.Parse(b)
	if c.Hash == plain.Hash {
		t.Fatal("config_sha256 does not cover the peers")
	}
	// An empty list is no peers but the image's own.
	c, err = config.Parse(withPeers(t, b, map[string]any{"releases": []any{}}))
	if err != nil || len(c.PeerMeasurements()) != 0 {
		t.Fatalf("empty peers: %+v, %v", c, err)
	}
}

func TestParsePeersRefuses(t *testing.T) {
	b := devConfig(t)
	ok := peerRelease("v1", 0xa, nil)
	for _, tc := range []struct {
		name     string
		in       []byte
		sentinel error
	}{
		{"bad_peers_null", withPeers(t, b, nil), attestation.ErrManifest},
		{"bad_peers_not_an_object", withPeers(t, b, []any{ok}), attestation.ErrManifest},
		{"bad_peers_unknown_key", withPeers(t, b, map[string]any{"releases": []any{ok}, "extra": 1}), attestation.ErrManifest},
		{"bad_peers_no_releases_key", withPeers(t, b, map[string]any{}), attestation.ErrManifest},
		{"bad_peer_unknown_field", withPeers(t, b, map[string]any{"releases": []any{peerRelease("v1", 0xa, func(r map[string]any) { r["pcr9"] = hex96(9) })}}), attestation.ErrManifest},
		{"bad_peer_pcr_short", withPeers(t, b, map[string]any{"releases": []any{peerRelease("v1", 0xa, func(r map[string]any) { r["pcr0"] = "aa" })}}), attestation.ErrManifest},
		{"bad_peer_pcr_uppercase", withPeers(t, b, map[string]any{"releases": []any{peerRelease("v1", 0xa, func(r map[string]any) { r["pcr0"] = strings.Repeat("A", 96) })}}), attestation.ErrManifest},
		{"bad_peer_missing_not_before", withPeers(t, b, map[string]any{"releases": []any{peerRelease("v1", 0xa, func(r map[string]any) { delete(r, "not_before") })}}), attestation.ErrManifest},
		{"bad_peer_version_twice", withPeers(t, b, map[string]any{"releases": []any{ok, peerRelease("v1", 0xb, nil)}}), attestation.ErrManifest},
		{"bad_peer_debug_pcrs", withPeers(t, b, map[string]any{"releases": []any{peerRelease("v0", 0, func(r map[string]any) {
			r["pcr1"], r["pcr2"] = hex96(0), hex96(0)
		})}}), attestation.ErrManifest},
		{"bad_peer_zero_pcr0", withPeers(t, b, map[string]any{"releases": []any{peerRelease("v0", 0, nil)}}), attestation.ErrManifest},
		{"bad_peer_zero_pcr8_matches_every_unsigned_image", withPeers(t, b, map[string]any{"releases": []any{peerRelease("v1", 0xa, func(r map[string]any) {
			r["pcr8"], r["match"] = hex96(0), []string{"pcr8"}
		})}}), attestation.ErrManifest},
		// The configuration's own strictness covers the member too.
		{"bad_peer_duplicate_key", []byte(strings.Replace(string(withPeers(t, b, map[string]any{"releases": []any{ok}})),
			`"version":"v1"`, `"version":"v1","version":"v2"`, 1)), strictjson.ErrJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.in, b) {
				t.Fatal("the case did not change the configuration")
			}
			c, err := config.Parse(tc.in)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Parse: %+v, %v; want %v", c, err, tc.sentinel)
			}
		})
	}
	// The control: the release the cases start from is accepted.
	if _, err := config.Parse(withPeers(t, b, map[string]any{"releases": []any{ok}})); err != nil {
		t.Fatal(err)
	}
}

// The peers member is a releases.json document as signerctl writes it: the
// manifest's Marshal output goes into the configuration unchanged.
func TestPeersTakeAReleasesManifest(t *testing.T) {
	rs := &attestation.Releases{Releases: []attestation.Release{{
		Version: "v7", PCRs: map[int][]byte{0: bytes.Repeat([]byte{7}, 48), 1: bytes.Repeat([]byte{1}, 48), 2: bytes.Repeat([]byte{2}, 48)},
		EIFSHA256: bytes.Repeat([]byte{0xe}, 32), NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Match: []int{0, 1, 2},
	}}}
	manifest, err := rs.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b := devConfig(t)
	in := edit(t, b, func(m map[string]any) { m["peers"] = json.RawMessage(manifest) })
	c, err := config.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if ms := c.PeerMeasurements(); len(ms) != 1 || ms[0].Name != "v7" || !bytes.Equal(ms[0].PCRs[0], rs.Releases[0].PCRs[0]) {
		t.Fatalf("peer measurements %+v", ms)
	}
}

package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func testClient(clock *fakeClock, lifetime time.Duration, maxKeys int) (*Client, *replica) {
	return &Client{cfg: Config{Clock: clock.now, KeyLifetime: lifetime, MaxKeys: maxKeys}, keys: map[string]*Attested{}},
		&replica{ep: &endpoint{raw: "https://127.0.0.1:8443"}}
}

// attested remembers a key kid as attested at r.
func attested(t *testing.T, c *Client, r *replica, kid string) *Attested {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &Attested{KeyID: kid, Key: &k.PublicKey, Expires: c.cfg.Clock().Add(c.cfg.KeyLifetime)}
	c.remember(a)
	r.kid = kid
	return a
}

// TestAttestedKeysExpire: a key is trusted for KeyLifetime after its
// attestation, then neither answers are accepted from it nor requests
// signed for it until it is attested again.
func TestAttestedKeysExpire(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	c, r := testClient(clock, time.Minute, 4)
	attested(t, c, r, "k1")
	if c.key("k1") == nil || c.target(r) != "k1" {
		t.Fatal("a fresh key is not trusted")
	}
	clock.t = clock.t.Add(59 * time.Second)
	if c.key("k1") == nil {
		t.Fatal("forgotten before its lifetime")
	}
	clock.t = clock.t.Add(time.Second)
	if c.key("k1") != nil || c.target(r) != "" {
		t.Fatal("an expired key is still trusted")
	}
	attested(t, c, r, "k1")
	if c.key("k1") == nil {
		t.Fatal("attested again, still not trusted")
	}
}

// TestAttestedKeysAreBounded: past MaxKeys the key that expires first is
// forgotten, and expired keys are dropped when another is remembered.
func TestAttestedKeysAreBounded(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	c, r := testClient(clock, time.Hour, 3)
	for i := range 10 {
		attested(t, c, r, fmt.Sprintf("k%d", i))
		clock.t = clock.t.Add(time.Second)
	}
	if len(c.keys) != 3 {
		t.Fatalf("%d keys remembered, want 3", len(c.keys))
	}
	for _, kid := range []string{"k7", "k8", "k9"} {
		if c.key(kid) == nil {
			t.Fatalf("%s, among the newest, was forgotten", kid)
		}
	}
	if c.key("k6") != nil || c.target(r) != "k9" {
		t.Fatalf("k6 kept or target %q", c.target(r))
	}
	clock.t = clock.t.Add(2 * time.Hour)
	attested(t, c, r, "k10")
	if len(c.keys) != 1 {
		t.Fatalf("%d keys after the others expired, want 1", len(c.keys))
	}
	// retarget only moves to an attested key.
	c.retarget(r, "k3")
	if c.target(r) != "k10" {
		t.Fatalf("retargeted to an unattested key: %q", c.target(r))
	}
}

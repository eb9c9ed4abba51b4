package envelope

import (
	"testing"
	"time"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func key(b byte) replayKey { return replayKey{b} }

func TestReplayGenerations(t *testing.T) {
	r := NewReplay(time.Minute, 2, now)
	k := key(1)
	if fresh, _ := r.Use(k, now); !fresh {
		t.Fatal("first use not fresh")
	}
	// Remembered for at least two windows.
	if fresh, _ := r.Use(k, now.Add(119*time.Second)); fresh {
		t.Fatal("forgotten within two windows")
	}
	if fresh, _ := r.Use(k, now.Add(121*time.Second)); fresh {
		t.Fatal("forgotten right after the first rotation")
	}
	// Bounded: a full generation refuses instead of growing.
	r2 := NewReplay(time.Minute, 2, now)
	r2.Use(key(1), now)
	r2.Use(key(2), now)
	if fresh, full := r2.Use(key(3), now); fresh || !full {
		t.Fatalf("third entry: fresh %v full %v, want refused as full", fresh, full)
	}
	if fresh, full := r2.Use(key(3), now.Add(2*time.Minute)); !fresh || full {
		t.Fatal("still full after rotation")
	}
}

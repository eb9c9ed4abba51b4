package envelope

import (
	"testing"
	"time"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func key(b byte) replayKey { return replayKey(b) }

var alice, bob, carol = [32]byte{1}, [32]byte{2}, [32]byte{3}

func TestReplayGenerations(t *testing.T) {
	r := NewReplay(time.Minute, 2, 2, 2, now)
	k := key(1)
	if fresh, _ := r.Use("worker", alice, k, now); !fresh {
		t.Fatal("first use not fresh")
	}
	// Remembered for at least two windows.
	if fresh, _ := r.Use("worker", alice, k, now.Add(119*time.Second)); fresh {
		t.Fatal("forgotten within two windows")
	}
	if fresh, _ := r.Use("worker", alice, k, now.Add(121*time.Second)); fresh {
		t.Fatal("forgotten right after the first rotation")
	}
	// Bounded: a full generation refuses instead of growing.
	r2 := NewReplay(time.Minute, 2, 2, 2, now)
	r2.Use("worker", alice, key(1), now)
	r2.Use("admin", bob, key(2), now)
	if fresh, full := r2.Use("worker", alice, key(3), now); fresh || full != CacheFull {
		t.Fatalf("third entry: fresh %v full %v, want refused as CacheFull", fresh, full)
	}
	if fresh, full := r2.Use("worker", alice, key(3), now.Add(2*time.Minute)); !fresh || full != NotFull {
		t.Fatal("still full after rotation")
	}
}

// TestReplayShareFullRefusesOnlyThatCaller is finding 5: one caller that
// fills its share is refused; the others, of its role or another, are not.
func TestReplayShareFullRefusesOnlyThatCaller(t *testing.T) {
	r := NewReplay(time.Minute, 20, 10, 3, now)
	for i := range 3 {
		if fresh, full := r.Use("worker", alice, key(byte(i)), now); !fresh || full != NotFull {
			t.Fatalf("alice's entry %d refused: %v", i, full)
		}
	}
	if fresh, full := r.Use("worker", alice, key(10), now); fresh || full != CallerFull {
		t.Fatalf("alice past her share: fresh %v full %v, want CallerFull", fresh, full)
	}
	for i := range 3 {
		if fresh, full := r.Use("worker", bob, key(byte(20+i)), now); !fresh || full != NotFull {
			t.Fatalf("bob, of alice's role, refused after alice filled her share: %v", full)
		}
	}
	// A replay is reported as such even when the share is full.
	if fresh, full := r.Use("worker", alice, key(0), now); fresh || full != NotFull {
		t.Fatalf("replay with a full share: fresh %v full %v, want a replay", fresh, full)
	}
	// The share is per generation.
	if fresh, full := r.Use("worker", alice, key(11), now.Add(2*time.Minute)); !fresh || full != NotFull {
		t.Fatalf("alice after rotation: %v", full)
	}
}

// TestReplayRoleShareRefusesOnlyThatRole: the certificates of one role
// together cannot fill the cache for another role.
func TestReplayRoleShareRefusesOnlyThatRole(t *testing.T) {
	r := NewReplay(time.Minute, 8, 4, 4, now)
	n := 0
	for _, c := range [][32]byte{alice, bob} {
		for range 2 {
			if fresh, full := r.Use("worker", c, key(byte(n)), now); !fresh || full != NotFull {
				t.Fatalf("worker entry %d refused: %v", n, full)
			}
			n++
		}
	}
	if fresh, full := r.Use("worker", carol, key(50), now); fresh || full != RoleFull {
		t.Fatalf("a third worker past the role's share: fresh %v full %v, want RoleFull", fresh, full)
	}
	for i := range 4 {
		if fresh, full := r.Use("admin", [32]byte{9}, key(byte(60+i)), now); !fresh || full != NotFull {
			t.Fatalf("admin refused after the workers filled their role's share: %v", full)
		}
	}
}

func TestReplaySharesDefaultToTheWhole(t *testing.T) {
	for _, share := range []int{0, -1, 11} {
		if r := NewReplay(time.Minute, 10, share, share, now); r.roleShare != 10 || r.callerShare != 10 {
			t.Errorf("share %d: got %d/%d, want 10", share, r.roleShare, r.callerShare)
		}
	}
}

package e2e

import (
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// TestOneRotateCallChangesOneReplica: one RotateKeys call changes at most
// one replica, whatever the parent routes where. (The review found that a
// client re-signing a rotation after wrong_enclave left the first request
// valid at the replica it named: a parent that sent it to b, let the
// re-signed copy rotate b, then delivered the first to a, forked epoch 2.)
// A call that changes state attests right before it signs and never signs
// twice.
func TestOneRotateCallChangesOneReplica(t *testing.T) {
	for _, tc := range []struct {
		name   string
		router func(f *channel.Frame) int
	}{
		// The client attested a; everything now goes to b.
		{"everything_to_b", func(*channel.Frame) int { return 1 }},
		// Attestation from a, the rotation itself to b.
		{"attestation_to_a_rotation_to_b", func(f *channel.Frame) int {
			if f.Route == api.RotateKeys.Route {
				return 1
			}
			return 0
		}},
		// Attestation from b, the rotation to a.
		{"attestation_to_b_rotation_to_a", func(f *channel.Frame) int {
			if f.Route == api.RotateKeys.Route {
				return 0
			}
			return 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, m := twoReplicas(t)

			admin := a.client("admin")
			if _, err := admin.KeyStatus(ctx(t)); err != nil { // attests a
				t.Fatal(err)
			}
			m.setRouter(tc.router)
			_, rotateErr := admin.RotateKeys(ctx(t))
			m.setRouter(nil)
			calls := m.calls(api.RotateKeys.Route)
			if len(calls) != 1 {
				t.Fatalf("one RotateKeys call signed %d rotations (err %v)", len(calls), rotateErr)
			}
			// Deliver every recorded rotation to both replicas, as the
			// parent can: only its first delivery to the instance it names
			// (if it never got there) may be taken.
			accepted := 0
			for _, call := range calls {
				for i, e := range []*env{a, b} {
					switch code := e.signedCode(e.sock, call, m.replay(i, call)); code {
					case "":
						accepted++
					case api.CodeWrongEnclave, api.CodeReplayed:
					default:
						t.Fatalf("replica %d answered %q to a delivered rotation", i, code)
					}
				}
			}
			if rotateErr == nil && accepted != 0 || accepted > 1 {
				t.Fatalf("RotateKeys (err %v) and %d delivered copies rotated", rotateErr, accepted)
			}
			m.route(0)
			ea := a.epoch()
			m.route(1)
			eb := a.epoch()
			if ea+eb != 3 {
				t.Fatalf("one RotateKeys call gave epochs a=%d b=%d, want one replica rotated once", ea, eb)
			}
		})
	}
}

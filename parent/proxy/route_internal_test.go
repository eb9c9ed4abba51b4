package proxy

import (
	"regexp"
	"strings"
	"testing"
)

// routePattern is the specification validRoute implements.
var routePattern = regexp.MustCompile(`^(v1|dev)/[a-z0-9][a-z0-9/-]{0,94}$`)

func TestValidRouteMatchesPattern(t *testing.T) {
	for _, s := range []string{
		"v1/derive-address", "dev/sign-message", "v1/keys/peer-export", "v1/", "dev/", "v2/x", "v1/-x", "v1//x",
		"v1/A", "v1/x_y", "V1/x", "v1/" + strings.Repeat("a", 95), "v1/" + strings.Repeat("a", 96), "v1/é", "",
		"dev/0", "v1/x\x00", "dev/x-/", "v1x/y",
	} {
		if got, want := validRoute(s), routePattern.MatchString(s); got != want {
			t.Errorf("%q: validRoute %v, pattern %v", s, got, want)
		}
	}
}

func FuzzValidRouteMatchesPattern(f *testing.F) {
	f.Add("v1/derive-address")
	f.Add("dev/x-/y")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validRoute(s), routePattern.MatchString(s); got != want {
			t.Fatalf("%q: validRoute %v, pattern %v", s, got, want)
		}
	})
}

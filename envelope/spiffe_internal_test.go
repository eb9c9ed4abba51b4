package envelope

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseSPIFFEID: an accepted ID is exactly its trust domain and
// segments written out again, and net/url reads it the same way (nothing to
// decode, no query, fragment, user or port); everything else is refused
// with errSPIFFEID.
func FuzzParseSPIFFEID(f *testing.F) {
	for _, s := range []string{"spiffe://td/admin", "spiffe://td/%61dmin", "spiffe://td/a/b", "spiffe://td", "SPIFFE://td/admin",
		"spiffe://td/admin?", "spiffe://td/admin#", "spiffe://td:1/admin", "spiffe://u@td/admin", "spiffe://td/./a", "spiffe://td//a", "spiffe://td/a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		td, segments, err := parseSPIFFEID(id)
		if err != nil {
			if !errors.Is(err, errSPIFFEID) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again := "spiffe://" + td
		if len(segments) > 0 {
			again += "/" + strings.Join(segments, "/")
		}
		if again != id {
			t.Fatalf("%q accepted as %q", id, again)
		}
		u, err := url.Parse(id)
		if err != nil {
			t.Fatalf("net/url refuses accepted %q: %v", id, err)
		}
		wantPath := strings.TrimPrefix(again, "spiffe://"+td)
		if u.Scheme != "spiffe" || u.Host != td || u.Path != wantPath || u.EscapedPath() != wantPath ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || u.Port() != "" || u.Opaque != "" {
			t.Fatalf("net/url reads accepted %q otherwise: %#v", id, u)
		}
	})
}

package cli

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestParentFlags: --parent is repeatable; without it the client calls
// make run's parent; the first one given replaces that default.
func TestParentFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
		err  string
	}{
		{name: "default", want: []string{DefaultParent}},
		{name: "one", args: []string{"--parent", "https://10.0.0.1:8443/"}, want: []string{"https://10.0.0.1:8443"}},
		{name: "several", args: []string{"--parent", "https://10.0.0.1:8443", "--parent", "https://signer.internal:8443"},
			want: []string{"https://10.0.0.1:8443", "https://signer.internal:8443"}},
		{name: "bad_empty", args: []string{"--parent", " "}, err: "want a parent base URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c ClientFlags
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.Register(fs)
			err := fs.Parse(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parse: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(c.parents.URLs(), tc.want) {
				t.Fatalf("parse: %v, parents %q, want %q", err, c.parents.URLs(), tc.want)
			}
		})
	}
}

// TestParentFlagUsage: the usage names the default and the repetition.
func TestParentFlagUsage(t *testing.T) {
	c := New("tool", "", "a tool")
	var cf ClientFlags
	cf.Register(c.Flags)
	var b strings.Builder
	c.Usage(&b)
	if !strings.Contains(b.String(), "--parent URL\n") || !strings.Contains(b.String(), "repeat for each replica") ||
		!strings.Contains(b.String(), "(default "+DefaultParent+")") {
		t.Fatalf("usage:\n%s", b.String())
	}
}

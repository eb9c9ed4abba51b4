package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsageSpellsFlagsWithTwoDashes(t *testing.T) {
	c := New("tool sub", "FILE", "do the thing")
	c.Flags.String("out", "", "write to `FILE`")
	c.Flags.Int("n", 3, "how many")
	c.Flags.Bool("force", false, "overwrite")
	var b bytes.Buffer
	c.Usage(&b)
	want := "usage: tool sub FILE [flags]\n\ndo the thing\n\nflags:\n" +
		"  --force\n    \toverwrite\n" +
		"  --n int\n    \thow many (default 3)\n" +
		"  --out FILE\n    \twrite to FILE\n"
	if b.String() != want {
		t.Fatalf("usage:\n%s\nwant:\n%s", b.String(), want)
	}
	var none bytes.Buffer
	New("tool bare", "", "nothing to set").Usage(&none)
	if got := none.String(); got != "usage: tool bare\n\nnothing to set\n" {
		t.Fatalf("usage without flags: %q", got)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		exit       int
		ok         bool
		stdout     string // prefix
		stderrLine string // contained in the one line
	}{
		{"flags", []string{"--out", "x"}, 0, true, "", ""},
		{"help_word", []string{"help"}, 0, false, "usage: tool", ""},
		{"dash_h", []string{"-h"}, 0, false, "usage: tool", ""},
		{"dash_dash_help_after_a_flag", []string{"--out", "x", "--help"}, 0, false, "usage: tool", ""},
		{"bad_unknown_flag", []string{"--nope"}, 2, false, "", "tool: flag provided but not defined: -nope (tool --help shows the usage)"},
		{"bad_missing_value", []string{"--out"}, 2, false, "", "flag needs an argument: -out"},
		{"bad_stray_argument", []string{"--out", "x", "extra"}, 2, false, "", `tool: unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New("tool", "", "a tool")
			c.Flags.String("out", "", "`FILE`")
			var stdout, stderr bytes.Buffer
			exit, ok := c.Parse(tc.args, &stdout, &stderr)
			if exit != tc.exit || ok != tc.ok || !strings.HasPrefix(stdout.String(), tc.stdout) || (tc.stdout == "" && stdout.Len() != 0) {
				t.Fatalf("Parse(%q) = %d, %v; stdout %q", tc.args, exit, ok, stdout.String())
			}
			if tc.stderrLine == "" {
				if stderr.Len() != 0 {
					t.Fatalf("stderr %q", stderr.String())
				}
				return
			}
			if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") || !strings.Contains(got, tc.stderrLine) {
				t.Fatalf("stderr %q, want one line with %q", got, tc.stderrLine)
			}
		})
	}
}

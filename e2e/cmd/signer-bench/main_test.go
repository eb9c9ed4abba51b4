package main

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestHelpAndUnknownFlags is the command-line convention: help, -h and
// --help print the usage with every flag to stdout and exit 0; an unknown
// flag or a bad value exits 2 with one line on stderr.
func TestHelpAndUnknownFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // stdout prefix
		err  string // in the one line of stderr
	}{
		{"help", []string{"help"}, 0, "usage: signer-bench [flags]", ""},
		{"-h", []string{"-h"}, 0, "usage: signer-bench [flags]", ""},
		{"--help", []string{"--help"}, 0, "usage: signer-bench [flags]", ""},
		{"--help_after_flags", []string{"--concurrency", "4", "--help"}, 0, "usage: signer-bench [flags]", ""},
		{"bad_unknown_flag", []string{"--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{"bad_value", []string{"--concurrency", "many"}, 2, "", `invalid value "many" for flag -concurrency`},
		{"bad_stray_argument", []string{"bench"}, 2, "", `unexpected argument "bench"`},
		{"bad_steps_falling", []string{"--sweep", "--sweep-steps", "0.5,0.2"}, 2, "", "the steps must rise"},
		{"bad_steps_past_twice_the_maximum", []string{"--sweep", "--sweep-steps", "0.5,2.5"}, 2, "", "want a fraction in (0, 2]"},
		{"bad_steps_not_numbers", []string{"--sweep", "--sweep-steps", "half"}, 2, "", `step "half"`},
		{"bad_svg_without_sweep", []string{"--svg", "x.svg"}, 2, "", "go with --sweep"},
		{"bad_sweep_with_a_rate", []string{"--sweep", "--rate", "10"}, 2, "", "--sweep sets the rates itself"},
		{"bad_pid_not_running", []string{"--pid", "parent=999999999"}, 2, "", "--pid parent=999999999: no such process to account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("%v: exit %d, want %d; stderr %q", tc.args, code, tc.code, stderr.String())
			}
			if tc.code == 0 {
				out := stdout.String()
				if stderr.Len() != 0 || !strings.HasPrefix(out, tc.out) {
					t.Fatalf("%v: stdout %q, stderr %q", tc.args, out, stderr.String())
				}
				for _, flag := range []string{"--sweep", "--sweep-steps F,F,...", "--svg FILE", "--rate-of-max FRACTION", "--dev DIR", "--pid NAME=PID"} {
					if !strings.Contains(out, "\n  "+flag+"\n") {
						t.Fatalf("%v: the usage does not list %s:\n%s", tc.args, flag, out)
					}
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if stdout.Len() != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "signer-bench: ") || !strings.Contains(lines[0], tc.err) {
				t.Fatalf("%v: stdout %q, stderr %q; want one line with %q", tc.args, stdout.String(), stderr.String(), tc.err)
			}
		})
	}
}

func TestStepsFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want stepsFlag
	}{
		{"one", "1", stepsFlag{1}},
		{"rising_with_spaces", "0.1, 0.5,1.25", stepsFlag{0.1, 0.5, 1.25}},
		{"up_to_twice", "1,2", stepsFlag{1, 2}},
		{"bad_empty", "", nil},
		{"bad_zero", "0,0.5", nil},
		{"bad_negative", "-0.1", nil},
		{"bad_equal", "0.5,0.5", nil},
		{"bad_nan", "NaN", nil},
		{"bad_inf", "+Inf", nil},
		{"bad_trailing_comma", "0.5,", nil},
		{"bad_too_many", stepsList(maxSweepSteps + 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s stepsFlag
			err := s.Set(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("Set(%q) = %v, want an error", tc.in, s)
				}
				return
			}
			if err != nil || !slices.Equal(s, tc.want) {
				t.Fatalf("Set(%q) = %v, %v; want %v", tc.in, s, err, tc.want)
			}
			if again := (&s).String(); again != strings.ReplaceAll(tc.in, " ", "") {
				t.Fatalf("String() = %q, want %q", again, tc.in)
			}
		})
	}
}

// stepsList is n rising steps under 1.
func stepsList(n int) string {
	var parts []string
	for i := 1; i <= n; i++ {
		parts = append(parts, strconv.FormatFloat(float64(i)/float64(n+1), 'f', 4, 64))
	}
	return strings.Join(parts, ",")
}

package main

import (
	"bytes"
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestEveryCommandHelps is the help convention: for every command, help,
// -h and --help print its usage with its flags to stdout, nothing to
// stderr, and exit 0; signerctl help COMMAND says the same.
func TestEveryCommandHelps(t *testing.T) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		for _, form := range []struct {
			name string
			args []string
		}{
			{"help", append(words[:len(words):len(words)], "help")},
			{"-h", append(words[:len(words):len(words)], "-h")},
			{"--help", append(words[:len(words):len(words)], "--help")},
			{"signerctl_help", append([]string{"help"}, words...)},
			{"after_a_flag", append(words[:len(words):len(words)], "--timeout=3s", "--help")},
		} {
			if form.name == "after_a_flag" && !hasFlag(t, c.name, "timeout") {
				continue
			}
			t.Run(strings.ReplaceAll(c.name, " ", "_")+"/"+form.name, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := run(form.args, nil, &stdout, &stderr)
				if code != 0 || stderr.Len() != 0 {
					t.Fatalf("%v: exit %d, stderr %q", form.args, code, stderr.String())
				}
				out := stdout.String()
				if !strings.HasPrefix(out, "usage: signerctl "+c.name) || !strings.Contains(out, c.summary) {
					t.Fatalf("%v: usage\n%s", form.args, out)
				}
				if strings.Contains(out, "[flags]") != strings.Contains(out, "\nflags:\n  --") {
					t.Fatalf("%v: the synopsis and the flag list disagree\n%s", form.args, out)
				}
			})
		}
	}
}

// hasFlag reports whether the command has the named flag, from its usage.
func hasFlag(t *testing.T, name, flag string) bool {
	var stdout, stderr bytes.Buffer
	run(append(strings.Fields(name), "--help"), nil, &stdout, &stderr)
	return strings.Contains(stdout.String(), "\n  --"+flag+" ")
}

// TestEveryCommandRefusesAnUnknownFlag: exit 2, one line on stderr,
// nothing on stdout.
func TestEveryCommandRefusesAnUnknownFlag(t *testing.T) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		args := append(words[:len(words):len(words)], "--bogus")
		if c.args != "" {
			args = append(words[:len(words):len(words)], "ARG", "--bogus")
		}
		t.Run("bad_"+strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(args, nil, &stdout, &stderr)
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code != 2 || len(lines) != 1 || !strings.HasSuffix(stderr.String(), "\n") || stdout.Len() != 0 {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q; want 2 and one line", args, code, stdout.String(), stderr.String())
			}
			if !strings.Contains(lines[0], "signerctl "+c.name+": ") || !strings.Contains(lines[0], "-bogus") {
				t.Fatalf("%v: %q does not name the command and the flag", args, lines[0])
			}
		})
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     string // a prefix, or "" for none
		stderr     string // contained
		stderrMany bool   // the usage, several lines
	}{
		{"top_help", []string{"help"}, 0, "usage: signerctl <command>", "", false},
		{"top_dash_h", []string{"-h"}, 0, "usage: signerctl <command>", "", false},
		{"top_double_dash_help", []string{"--help"}, 0, "usage: signerctl <command>", "", false},
		{"group_help", []string{"keys", "--help"}, 0, "usage: signerctl keys <command>", "", false},
		{"help_group", []string{"help", "attest"}, 0, "usage: signerctl attest <command>", "", false},
		{"bad_no_command", nil, 2, "", "usage: signerctl <command>", true},
		{"bad_group_alone", []string{"keys"}, 2, "", "usage: signerctl keys <command>", true},
		{"bad_unknown_command", []string{"explode"}, 2, "", `unknown command "explode"`, false},
		{"bad_unknown_subcommand", []string{"keys", "explode"}, 2, "", `signerctl keys: unknown command "explode"`, false},
		{"bad_help_unknown_command", []string{"help", "explode"}, 2, "", `unknown command "explode"`, false},
		{"bad_missing_argument", []string{"call"}, 2, "", "METHOD is required", false},
		{"bad_flag_of_a_command_without_flags", []string{"keys", "inspect", "--timeout", "1s"}, 2, "", "flag provided but not defined", false},
		{"bad_stray_argument", []string{"keys", "status", "extra"}, 2, "", `unexpected argument "extra"`, false},
		{"bad_flag_value", []string{"attest", "verify", "--doc", "x", "--pcr", "1=zz"}, 2, "", "invalid value", false},
		{"bad_required_flag", []string{"dev-pki"}, 2, "", "--out is required", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, nil, &stdout, &stderr)
			if code != tc.code || !strings.HasPrefix(stdout.String(), tc.stdout) || (tc.stdout == "" && stdout.Len() != 0) ||
				!strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
			}
			if n := strings.Count(stderr.String(), "\n"); tc.stderr != "" && !tc.stderrMany && n != 1 {
				t.Fatalf("%v: %d lines on stderr, want one: %q", tc.args, n, stderr.String())
			}
		})
	}
}

// TestPackageDocListsEveryCommand: the doc comment's synopsis names every
// command.
func TestPackageDocListsEveryCommand(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	for _, c := range commands {
		if !strings.Contains(doc, "\tsignerctl "+c.name+" ") && !strings.Contains(doc, "\tsignerctl "+c.name+"\n") {
			t.Errorf("the package doc does not list signerctl %s", c.name)
		}
	}
}

// Package deptest checks what a package links, as the dependency tests of
// the tree say it may: `go list -deps` of the package, with the build tags
// given, against a rule that names what must not be there.
package deptest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Dep is one package a build links.
type Dep struct {
	ImportPath string
	Standard   bool
}

// Deps lists the packages pkg links (itself included) when built with
// tags, for GOOS goos ("" is the host's).
func Deps(pkg, tags, goos string) ([]Dep, error) {
	args := []string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(GoTool(), append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if goos != "" {
		cmd.Env = append(cmd.Env, "GOOS="+goos)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("deptest: go list %s: %v: %s", pkg, err, stderr.Bytes())
	}
	var deps []Dep
	for line := range strings.Lines(string(out)) {
		path, std, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			return nil, fmt.Errorf("deptest: go list printed %q", line)
		}
		deps = append(deps, Dep{ImportPath: path, Standard: std == "true"})
	}
	return deps, nil
}

// Packages lists the packages a pattern such as "m/internal/..." matches.
func Packages(pattern string) ([]string, error) {
	out, err := exec.Command(GoTool(), "list", pattern).Output()
	if err != nil {
		return nil, fmt.Errorf("deptest: go list %s: %v", pattern, err)
	}
	return strings.Fields(string(out)), nil
}

// GoTool is the go command on PATH: the one running the tests (with the
// GOTOOLCHAIN they run under).
func GoTool() string { return "go" }

// Rule says what a package must not link.
type Rule struct {
	// Forbidden are import path prefixes: a dependency equal to one, or
	// under it ("prefix/…"), breaks the rule.
	Forbidden []string
	// StandardOnly: every dependency but the checked packages themselves
	// must be in the standard library.
	StandardOnly bool
}

// Check lists what pkg (an import path, or a pattern such as "m/parent/...")
// links when built with tags for goos, and returns the dependencies that
// break r, sorted.
func Check(pkg, tags, goos string, r Rule) ([]string, error) {
	deps, err := Deps(pkg, tags, goos)
	if err != nil {
		return nil, err
	}
	self := strings.TrimSuffix(pkg, "/...")
	var out []string
	for _, d := range deps {
		switch {
		case slices.ContainsFunc(r.Forbidden, func(p string) bool { return under(d.ImportPath, p) }):
			out = append(out, d.ImportPath)
		case r.StandardOnly && !d.Standard && !under(d.ImportPath, self):
			out = append(out, d.ImportPath)
		}
	}
	slices.Sort(out)
	return out, nil
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }

// Package tagcheck finds tests a build tag hides: Test, Fuzz, Benchmark and
// Example functions declared in _test.go files that build with the tag and
// not without it. `go test ./...` without the tag does not list them, so
// they vanish instead of skipping; the tree holds none for the simulator's
// tag (its test says so), because each package puts only the simulator's
// construction behind the tag and skips without it.
package tagcheck

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Hidden is one test function that builds only with the tag.
type Hidden struct {
	// File is the file's path relative to the root, with forward slashes.
	File string
	// Func is the function's name.
	Func string
}

func (h Hidden) String() string { return h.File + ": " + h.Func }

// HiddenTests walks the tree at root as the go command does (skipping
// testdata, vendor and directories whose name starts with "." or "_") and
// returns, sorted, the test functions in _test.go files that build for the
// host with tag and do not build without it.
func HiddenTests(root, tag string) ([]Hidden, error) {
	with, without := build.Default, build.Default
	with.BuildTags = []string{tag}
	without.BuildTags = nil
	var hidden []Hidden
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") || !d.Type().IsRegular() {
			return nil
		}
		dir := filepath.Dir(path)
		in, err := with.MatchFile(dir, name)
		if err != nil {
			return fmt.Errorf("tagcheck: %w", err)
		}
		out, err := without.MatchFile(dir, name)
		if err != nil {
			return fmt.Errorf("tagcheck: %w", err)
		}
		if !in || out {
			return nil
		}
		funcs, err := testFuncs(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return fmt.Errorf("tagcheck: %w", err)
		}
		for _, f := range funcs {
			hidden = append(hidden, Hidden{File: filepath.ToSlash(rel), Func: f})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(hidden, func(a, b Hidden) int { return strings.Compare(a.String(), b.String()) })
	return hidden, nil
}

// testFuncs lists the functions of a test file that go test runs.
func testFuncs(path string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("tagcheck: %w", err)
	}
	var names []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv != nil {
			continue
		}
		for _, prefix := range []string{"Test", "Fuzz", "Benchmark", "Example"} {
			if isTest(fn.Name.Name, prefix) {
				names = append(names, fn.Name.Name)
				break
			}
		}
	}
	return names, nil
}

// isTest is the go command's rule: the name is the prefix alone or the
// prefix followed by a rune that is not a lower-case letter.
func isTest(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return !unicode.IsLower(r)
}

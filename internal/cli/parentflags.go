package cli

import (
	"errors"
	"strings"
)

// DefaultParent is --parent when none is given: make run's parent.
const DefaultParent = "https://127.0.0.1:8443"

// ParentFlags collects repeated --parent URL flags: the replicas of a
// fleet, each a parent's base URL (a DNS name with several addresses is a
// replica per address). Until one is given it holds DefaultParent; the
// first one given replaces it.
type ParentFlags struct {
	urls []string
	set  bool
}

// String is for flag.Value: the URLs given, comma-separated.
func (p *ParentFlags) String() string {
	if p == nil {
		return ""
	}
	return strings.Join(p.urls, ",")
}

// Set adds one URL; the client checks its form.
func (p *ParentFlags) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return errors.New("want a parent base URL such as https://10.0.0.1:8443")
	}
	if !p.set {
		p.urls, p.set = nil, true
	}
	p.urls = append(p.urls, strings.TrimRight(v, "/"))
	return nil
}

// URLs returns the URLs given, or DefaultParent.
func (p *ParentFlags) URLs() []string {
	if !p.set {
		return []string{DefaultParent}
	}
	return append([]string(nil), p.urls...)
}

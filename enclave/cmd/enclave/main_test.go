package main

import (
	"strings"
	"testing"
)

func TestMaxConnsIsBounded(t *testing.T) {
	for _, tt := range []struct {
		name string
		max  int
	}{
		{"bad_max_conns_zero", 0},
		{"bad_max_conns_negative", -1},
		{"bad_max_conns_above_the_bound", 257},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{ConfigPath: "enclave.json", Listen: "unix:///tmp/enclave.sock", MaxConns: tt.max}
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--max-conns") {
				t.Fatalf("Validate: %v, want a --max-conns error", err)
			}
		})
	}
}

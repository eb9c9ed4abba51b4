package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nitro-signer/nitro-signer/internal/s3test"
	"github.com/nitro-signer/nitro-signer/parent/state"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

func baseConfig() Config {
	return Config{TLSCert: "c", TLSKey: "k", ClientCA: "ca", Enclave: "unix:///e.sock", MaxBody: 4096,
		Timeout: 1e9, MaxConcurrent: 1, PoolSize: 1, IMDS: "off"}
}

func TestValidateState(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Config)
		bad  string // what the error names; "" for none
	}{
		{"none", func(*Config) {}, ""},
		{"state_dir", func(c *Config) { c.StateDir, c.HostListen = "/var/lib/s", "unix:///h.sock" }, ""},
		{"state_path", func(c *Config) { c.State, c.HostListen = "/var/lib/s", "unix:///h.sock" }, ""},
		{"state_s3", func(c *Config) { c.State, c.HostListen = "s3://bucket/signer/prod", "unix:///h.sock" }, ""},
		{"state_s3_all_flags", func(c *Config) {
			c.State, c.HostListen = "s3://bucket/p", "unix:///h.sock"
			c.S3Endpoint, c.S3Region, c.S3BucketOwner = "http://127.0.0.1:8333", "eu-west-1", "111122223333"
		}, ""},
		{"bad_both_stores", func(c *Config) { c.State, c.StateDir, c.HostListen = "/a", "/b", "unix:///h.sock" }, "give one"},
		{"bad_state_without_host", func(c *Config) { c.State = "s3://bucket/p" }, "go together"},
		{"bad_host_without_state", func(c *Config) { c.HostListen = "unix:///h.sock" }, "go together"},
		{"bad_other_scheme", func(c *Config) { c.State, c.HostListen = "gs://bucket/p", "unix:///h.sock" }, "neither"},
		{"bad_s3_url", func(c *Config) { c.State, c.HostListen = "s3://Bucket/p", "unix:///h.sock" }, "--state"},
		{"bad_s3_flags_for_a_directory", func(c *Config) {
			c.StateDir, c.HostListen, c.S3Endpoint = "/a", "unix:///h.sock", "http://127.0.0.1:1"
		}, "--s3-endpoint"},
		{"bad_region_for_a_directory", func(c *Config) { c.State, c.HostListen, c.S3Region = "/a", "unix:///h.sock", "x" }, "--s3-region"},
		{"bad_endpoint", func(c *Config) {
			c.State, c.HostListen, c.S3Endpoint = "s3://bucket/p", "unix:///h.sock", "ftp://127.0.0.1"
		}, "--s3-endpoint"},
		{"bad_bucket_owner", func(c *Config) {
			c.State, c.HostListen, c.S3BucketOwner = "s3://bucket/p", "unix:///h.sock", "owner"
		}, "--s3-bucket-owner"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig()
			c.set(&cfg)
			err := cfg.Validate()
			if c.bad == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)) {
				t.Fatalf("err = %v, want one naming %q", err, c.bad)
			}
		})
	}
}

// The parent opens an s3:// store with the SDK's default chain (here the
// environment) and counts its calls, a lost sequence as "exists".
func TestS3StoreThroughTheFlags(t *testing.T) {
	srv := s3test.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg := baseConfig()
	cfg.State, cfg.S3Endpoint, cfg.S3Region, cfg.HostListen = srv.URL(), srv.Endpoint, srv.Region, "unix:///h.sock"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opened, err := openStore(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := opened.(*state.S3); !ok {
		t.Fatalf("opened a %T", opened)
	}
	reg := prometheus.NewRegistry()
	s := newMeteredStore(opened, reg)
	if err := s.Put(ctx, 1, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, 1, []byte("second")); !errors.Is(err, state.ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	s.Get(ctx, 2)
	if seqs, more, err := s.List(ctx, 0, 10); err != nil || len(seqs) != 1 || seqs[0] != 1 || more {
		t.Fatalf("list = %v, more %v, %v", seqs, more, err)
	}
	if _, _, err := s.List(ctx, 0, 0); err == nil {
		t.Fatal("a list of at most 0 succeeded")
	}
	for _, c := range []struct {
		op, result string
		want       float64
	}{
		{"put", "ok", 1}, {"put", "exists", 1}, {"put", "error", 0},
		{"get", "not_found", 1}, {"list", "ok", 1}, {"list", "error", 1},
	} {
		if got := testutil.ToFloat64(s.calls.WithLabelValues(c.op, c.result)); got != c.want {
			t.Errorf("calls{op=%s,result=%s} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
}

func TestValidateInFlight(t *testing.T) {
	for _, c := range []struct {
		name     string
		inFlight int
		bad      bool
	}{
		{"default", 0, false},
		{"enclave_default", 256, false},
		{"largest", 65536, false},
		{"bad_negative", -1, true},
		{"bad_above_the_enclave_bound", 65537, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.InFlight = c.inFlight
			err := cfg.Validate()
			if c.bad != (err != nil) || (err != nil && !strings.Contains(err.Error(), "--in-flight")) {
				t.Fatalf("in-flight %d: err = %v, want refused: %t", c.inFlight, err, c.bad)
			}
		})
	}
}

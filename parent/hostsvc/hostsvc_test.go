package hostsvc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/parent/hostsvc"
	"github.com/nitro-signer/nitro-signer/parent/state"
)

func service(t *testing.T) *hostsvc.Service {
	t.Helper()
	st, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &hostsvc.Service{Store: st, Logger: slog.New(slog.DiscardHandler)}
}

func call(s *hostsvc.Service, route string, body []byte) channel.Reply {
	return s.Handle(context.Background(), &channel.Call{Route: route, Body: body})
}

func TestStateRoutes(t *testing.T) {
	s := service(t)
	if r := call(s, hostproto.RouteStatePut, hostproto.EncodePut(1, []byte("sealed"))); r.Status != 200 || string(r.Body) != `{"seq":1}` {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	// A second writer of sequence 1 loses, and sequence 1 is unchanged.
	if r := call(s, hostproto.RouteStatePut, hostproto.EncodePut(1, []byte("other"))); r.Status != hostproto.StatusExists ||
		!strings.Contains(string(r.Body), `"state_conflict"`) {
		t.Fatalf("put of a taken sequence: %d %s", r.Status, r.Body)
	}
	if r := call(s, hostproto.RouteStateList, nil); r.Status != 200 || string(r.Body) != `{"sequences":[1]}` {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	if r := call(s, hostproto.RouteStateGet, []byte(`{"seq":1}`)); r.Status != 200 || string(r.Body) != "sealed" {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	for name, tc := range map[string]struct {
		route  string
		body   string
		status int
	}{
		"get_missing_sequence": {hostproto.RouteStateGet, `{"seq":9}`, 404},
		"get_malformed":        {hostproto.RouteStateGet, `{"seq":"x"}`, 400},
		"get_sequence_zero":    {hostproto.RouteStateGet, `{"seq":0}`, 400},
		"put_empty":            {hostproto.RouteStatePut, ``, 400},
		"put_sequence_zero":    {hostproto.RouteStatePut, string(hostproto.EncodePut(0, []byte("x"))), 400},
		"put_no_sequence":      {hostproto.RouteStatePut, "sealed", 400},
		"unknown_route":        {"state/delete", `{}`, 404},
		"no_credential_source": {hostproto.RouteCredentials, ``, 503},
	} {
		if r := call(s, tc.route, []byte(tc.body)); r.Status != tc.status {
			t.Errorf("%s: status %d (%s), want %d", name, r.Status, r.Body, tc.status)
		}
	}
}

func TestIMDSv2Credentials(t *testing.T) {
	puts := 0
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		puts++
		w.Write([]byte("tok"))
	})
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token") != "tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("role-a\n"))
	})
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/role-a", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"Code": "Success", "AccessKeyId": "AKID", "SecretAccessKey": "SECRET",
			"Token": "TOKEN", "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := service(t)
	s.Credentials = &hostsvc.IMDS{Endpoint: srv.URL}
	for range 2 {
		r := call(s, hostproto.RouteCredentials, nil)
		var c hostproto.Credentials
		if r.Status != 200 || json.Unmarshal(r.Body, &c) != nil || c.AccessKeyID != "AKID" || c.SessionToken() != "TOKEN" {
			t.Fatalf("credentials: %d %s", r.Status, r.Body)
		}
	}
	if puts != 1 {
		t.Fatalf("fetched %d times; the credentials are cached until near expiry", puts)
	}
	// Credentials never print their secret half, whatever the verb.
	c := *hostproto.NewCredentials("AKID", "SECRET", "TOKEN", time.Time{})
	if p := fmt.Sprintf("%v %+v %#v %s", c, c, c, c); strings.Contains(p, "SECRET") || strings.Contains(p, "TOKEN") || !strings.Contains(p, "AKID") {
		t.Fatalf("credentials print as %q", p)
	}
}

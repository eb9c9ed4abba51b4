package hostsvc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	if r := call(s, hostproto.RouteStateList, nil); r.Status != 200 || string(r.Body) != `{"sequences":[1],"more":false}` {
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

// state/list takes {"after": n} strictly and answers the sequences above
// n, ascending, at most MaxSequences, and whether more remain.
func TestStateList(t *testing.T) {
	s := service(t)
	for _, seq := range []uint64{1, 2, 3, 10, 1 << 40, math.MaxUint64} {
		if r := call(s, hostproto.RouteStatePut, hostproto.EncodePut(seq, []byte("sealed"))); r.Status != 200 {
			t.Fatalf("put %d: %d %s", seq, r.Status, r.Body)
		}
	}
	for _, c := range []struct{ name, body, want string }{
		{"empty_body", ``, `{"sequences":[1,2,3,10,1099511627776,18446744073709551615],"more":false}`},
		{"after_0", `{"after":0}`, `{"sequences":[1,2,3,10,1099511627776,18446744073709551615],"more":false}`},
		{"no_member", `{}`, `{"sequences":[1,2,3,10,1099511627776,18446744073709551615],"more":false}`},
		{"after_2", `{"after":2}`, `{"sequences":[3,10,1099511627776,18446744073709551615],"more":false}`},
		{"after_between", ` { "after" : 4 } `, `{"sequences":[10,1099511627776,18446744073709551615],"more":false}`},
		{"after_the_newest", `{"after":18446744073709551615}`, `{"sequences":[],"more":false}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := call(s, hostproto.RouteStateList, []byte(c.body)); r.Status != 200 || string(r.Body) != c.want {
				t.Fatalf("list %q: %d %s, want %s", c.body, r.Status, r.Body, c.want)
			}
		})
	}
	for _, c := range []struct{ name, body string }{
		{"bad_negative", `{"after":-1}`},
		{"bad_fraction", `{"after":1.5}`},
		{"bad_exponent", `{"after":1e3}`},
		{"bad_string", `{"after":"1"}`},
		{"bad_over_uint64", `{"after":18446744073709551616}`},
		{"bad_case", `{"After":1}`},
		{"bad_duplicate", `{"after":1,"after":2}`},
		{"bad_unknown_member", `{"after":1,"more":true}`},
		{"bad_trailing", `{"after":1}x`},
		{"bad_two_values", `{"after":1}{"after":2}`},
		{"bad_array", `[1]`},
		{"bad_null", `null`},
		{"bad_null_spaced", " \n null"},
		{"bad_white_space_only", " "},
		{"bad_number", `1`},
		{"bad_truncated", `{"after":1`},
		{"bad_oversized", `{"after":1}` + strings.Repeat(" ", 300)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := call(s, hostproto.RouteStateList, []byte(c.body)); r.Status != 400 || !strings.Contains(string(r.Body), `"bad_request"`) {
				t.Fatalf("list %q: %d %s, want 400", c.body, r.Status, r.Body)
			}
		})
	}
}

// More than MaxSequences above after: the first MaxSequences, and more.
func TestStateListBound(t *testing.T) {
	s := service(t)
	for seq := uint64(1); seq <= hostproto.MaxSequences+2; seq++ {
		if r := call(s, hostproto.RouteStatePut, hostproto.EncodePut(seq, []byte("sealed"))); r.Status != 200 {
			t.Fatalf("put %d: %d %s", seq, r.Status, r.Body)
		}
	}
	var got hostproto.SequenceList
	r := call(s, hostproto.RouteStateList, []byte(`{"after":0}`))
	if r.Status != 200 || json.Unmarshal(r.Body, &got) != nil || len(got.Sequences) != hostproto.MaxSequences ||
		got.Sequences[0] != 1 || got.Sequences[len(got.Sequences)-1] != hostproto.MaxSequences || !got.More {
		t.Fatalf("list: %d, %d sequences, more %v", r.Status, len(got.Sequences), got.More)
	}
	r = call(s, hostproto.RouteStateList, fmt.Appendf(nil, `{"after":%d}`, hostproto.MaxSequences))
	if r.Status != 200 || string(r.Body) != fmt.Sprintf(`{"sequences":[%d,%d],"more":false}`, hostproto.MaxSequences+1, hostproto.MaxSequences+2) {
		t.Fatalf("list after %d: %d %s", hostproto.MaxSequences, r.Status, r.Body)
	}
}

// cannedStore answers List as told.
type cannedStore struct {
	state.Store
	seqs []uint64
	more bool
	err  error
	// after is the last List's after.
	after uint64
}

func (c *cannedStore) List(_ context.Context, after uint64, _ int) ([]uint64, bool, error) {
	c.after = after
	return c.seqs, c.more, c.err
}

func (c *cannedStore) String() string { return "canned" }

// A store that fails, or breaks its contract, is a 500 and never passes
// its answer on.
func TestStateListStoreFaults(t *testing.T) {
	over := make([]uint64, hostproto.MaxSequences+1)
	for i := range over {
		over[i] = uint64(i + 6)
	}
	for _, c := range []struct {
		name  string
		store *cannedStore
	}{
		{"bad_store_error", &cannedStore{err: errors.New("state: list s3://b/p/: 16 pages of keys above sequence 5 and not one sequence (foreign keys fill the listing)")}},
		{"bad_descending", &cannedStore{seqs: []uint64{9, 7}}},
		{"bad_repeated", &cannedStore{seqs: []uint64{7, 7}}},
		{"bad_at_after", &cannedStore{seqs: []uint64{5, 6}}},
		{"bad_below_after", &cannedStore{seqs: []uint64{1}}},
		{"bad_over_the_bound", &cannedStore{seqs: over, more: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &hostsvc.Service{Store: c.store, Logger: slog.New(slog.DiscardHandler)}
			r := call(s, hostproto.RouteStateList, []byte(`{"after":5}`))
			if r.Status != 500 || strings.Contains(string(r.Body), "sequences") || strings.Contains(string(r.Body), "foreign") {
				t.Fatalf("%d %s, want a bare 500", r.Status, r.Body)
			}
			if c.store.after != 5 {
				t.Fatalf("the store listed after %d", c.store.after)
			}
		})
	}
	s := &hostsvc.Service{Store: &cannedStore{seqs: []uint64{6, 9}, more: true}, Logger: slog.New(slog.DiscardHandler)}
	if r := call(s, hostproto.RouteStateList, []byte(`{"after":5}`)); r.Status != 200 || string(r.Body) != `{"sequences":[6,9],"more":true}` {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	s.Store = &cannedStore{}
	if r := call(s, hostproto.RouteStateList, []byte(`{"after":5}`)); r.Status != 200 || string(r.Body) != `{"sequences":[],"more":false}` {
		t.Fatalf("an empty listing: %d %s", r.Status, r.Body)
	}
}

// Any state/list body: a 400, or a 200 whose sequences ascend above the
// body's after; never a panic.
func FuzzStateList(f *testing.F) {
	for _, b := range []string{``, `{"after":0}`, `{"after":3}`, `{"after":-1}`, `{"after":1,"after":2}`, `null`, `{"After":1}`, `{"after":1e1}`} {
		f.Add([]byte(b))
	}
	st, err := state.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	for _, seq := range []uint64{1, 2, 3, 10, math.MaxUint64} {
		if err := st.Put(context.Background(), seq, []byte("sealed")); err != nil {
			f.Fatal(err)
		}
	}
	s := &hostsvc.Service{Store: st, Logger: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := call(s, hostproto.RouteStateList, body)
		if r.Status == 400 {
			return
		}
		var req hostproto.ListRequest
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("%q accepted, yet encoding/json refuses it: %v", body, err)
			}
		}
		var got hostproto.SequenceList
		if r.Status != 200 || json.Unmarshal(r.Body, &got) != nil || got.More {
			t.Fatalf("%q: %d %s", body, r.Status, r.Body)
		}
		for i, seq := range got.Sequences {
			if seq <= req.After || (i > 0 && seq <= got.Sequences[i-1]) {
				t.Fatalf("%q: %s is not ascending above %d", body, r.Body, req.After)
			}
		}
	})
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

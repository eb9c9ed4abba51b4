package host_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
)

func TestParseSequenceList(t *testing.T) {
	for _, tc := range []struct {
		in    string
		after uint64
		want  []uint64
		more  bool
	}{
		{`{"sequences":[]}`, 0, []uint64{}, false},
		{`{"sequences":[1,2,3]}`, 0, []uint64{1, 2, 3}, false},
		{`{"sequences":[9],"more":true}`, 8, []uint64{9}, true},
		{`{"sequences":[5,7],"more":false}`, 4, []uint64{5, 7}, false},
	} {
		got, more, err := host.ParseSequenceList([]byte(tc.in), tc.after)
		if err != nil || !slices.Equal(got, tc.want) || more != tc.more {
			t.Errorf("%s after %d: %v %v, %v", tc.in, tc.after, got, more, err)
		}
	}
	for _, tc := range []struct {
		name, in string
		after    uint64
	}{
		{"bad_descending", `{"sequences":[2,1]}`, 0},
		{"bad_repeated", `{"sequences":[2,2]}`, 0},
		{"bad_zero", `{"sequences":[0]}`, 0},
		{"bad_negative", `{"sequences":[-1]}`, 0},
		{"bad_not_above_after", `{"sequences":[3,4]}`, 3},
		{"bad_below_after", `{"sequences":[1]}`, 5},
		{"bad_type", `{"sequences":"x"}`, 0},
		{"bad_more_type", `{"sequences":[],"more":1}`, 0},
		{"bad_array", `[]`, 0},
		{"bad_empty", ``, 0},
		{"bad_too_many", `{"sequences":[` + strings.Repeat("1,", hostproto.MaxSequences) + `1]}`, 0},
	} {
		if _, _, err := host.ParseSequenceList([]byte(tc.in), tc.after); !errors.Is(err, host.ErrUnavailable) {
			t.Errorf("%s: %.40s: %v", tc.name, tc.in, err)
		}
	}
}

func TestParseCredentialsNeverQuotesTheAnswer(t *testing.T) {
	_, err := hostproto.ParseCredentials([]byte(`{"access_key_id":"AKID","secret_access_key":"","session_token":"s3cr3t-token"}`))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("credentials without a secret key: %v", err)
	}
	c, err := hostproto.ParseCredentials([]byte(`{"access_key_id":"AKID","secret_access_key":"SK","session_token":"T","expiration":"2030-01-01T00:00:00Z"}`))
	if err != nil || c.AccessKeyID != "AKID" || c.Expiration.Year() != 2030 {
		t.Fatalf("%+v, %v", c, err)
	}
}

// FuzzParseReplies feeds the parsers of the parent's answers anything a
// hostile parent could send: each returns a value or ErrUnavailable.
func FuzzParseReplies(f *testing.F) {
	f.Add([]byte(`{"sequences":[1,2,3],"more":true}`))
	f.Add([]byte(`{"seq":4}`))
	f.Add([]byte(`{"access_key_id":"A","secret_access_key":"S","session_token":"T","expiration":"2030-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, _, err := host.ParseSequenceList(b, 2); err != nil && !errors.Is(err, host.ErrUnavailable) {
			t.Fatal(err)
		} else if err == nil {
			for i, s := range l {
				if s <= 2 || (i > 0 && s <= l[i-1]) {
					t.Fatalf("accepted %v after 2", l)
				}
			}
		}
		if seq, err := host.ParseSequenceRef(b); err == nil && seq == 0 {
			t.Fatal("accepted sequence 0")
		}
		if c, err := hostproto.ParseCredentials(b); err == nil && (c.AccessKeyID == "" || c.SecretAccessKey() == "") {
			t.Fatal("accepted empty credentials")
		}
	})
}

// lyingParent answers every route with status and a body of its choosing.
func lyingParent(t *testing.T, status int, body string) *host.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "host.sock")
	addr, _ := channel.ParseAddr("unix://" + sock)
	ln, err := channel.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&channel.Server{Handler: channel.HandlerFunc(func(context.Context, *channel.Call) channel.Reply {
			return channel.Reply{Status: status, Body: []byte(body)}
		})}).Serve(ctx, ln)
	}()
	c := host.Dial(addr, nil)
	t.Cleanup(func() { c.Close(); cancel(); ln.Close(); <-done })
	return c
}

// A failed reply is reported by route and status, never by its body: the
// enclave quotes these errors in readiness and in answers it signs.
func TestErrorsNeverQuoteTheParentsReply(t *testing.T) {
	const lie = "visit https://evil.example/recover"
	for _, status := range []int{500, 503, 507, 418} {
		c := lyingParent(t, status, lie)
		for _, tc := range []struct {
			route string
			call  func() error
		}{
			{hostproto.RouteStateList, func() error { _, _, err := c.List(context.Background(), 0); return err }},
			{hostproto.RouteStateGet, func() error { _, err := c.Get(context.Background(), 1); return err }},
			{hostproto.RouteStatePut, func() error { return c.Put(context.Background(), 1, []byte("x")) }},
			{hostproto.RouteCredentials, func() error { _, err := c.Credentials(context.Background()); return err }},
		} {
			t.Run(fmt.Sprintf("bad_%s_%d", tc.route, status), func(t *testing.T) {
				err := tc.call()
				var he *host.Error
				if !errors.Is(err, host.ErrUnavailable) || !errors.As(err, &he) || he.Route != tc.route || he.Status != status {
					t.Fatalf("%v, want a host.Error for %s status %d", err, tc.route, status)
				}
				if strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), "visit") {
					t.Fatalf("the error quotes the parent's reply: %v", err)
				}
				if want := fmt.Sprintf("host: parent unavailable: %s: status %d", tc.route, status); err.Error() != want {
					t.Fatalf("%q, want %q", err, want)
				}
			})
		}
	}
}

// No answer at all names the route, and is the channel's error under
// errors.Is.
func TestErrorsWithoutAnAnswerNameTheRoute(t *testing.T) {
	addr, _ := channel.ParseAddr("unix://" + filepath.Join(t.TempDir(), "nobody.sock"))
	c := host.Dial(addr, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := c.List(ctx, 0)
	var he *host.Error
	if !errors.As(err, &he) || he.Status != 0 || !errors.Is(err, context.DeadlineExceeded) ||
		err.Error() != "host: parent unavailable: state/list: no answer in time" {
		t.Fatalf("no parent: %v", err)
	}
}

// TestParentAnswersAreDecodedStrictly: the parent's answers go through the
// enclave's strict JSON decoder — no keys equal under case folding, no key
// in another case than its field, no unknown fields (issue 13 finding 7).
func TestParentAnswersAreDecodedStrictly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func([]byte) error
		in    string
	}{
		{"bad_list_keys_equal_under_case_folding", listErr, `{"sequences":[3],"Sequences":[9]}`},
		{"bad_list_field_in_other_case", listErr, `{"SEQUENCES":[3]}`},
		{"bad_ref_field_in_other_case", refErr, `{"Seq":5}`},
		{"bad_ref_unknown_field", refErr, `{"seq":5,"note":"x"}`},
		{"bad_credentials_keys_equal_under_case_folding", credErr, `{"access_key_id":"A","ACCESS_KEY_ID":"B","secret_access_key":"S"}`},
		{"bad_credentials_field_in_other_case_kelvin", credErr, `{"access_\u212aey_id":"A","secret_access_key":"S"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse([]byte(tc.in)); !errors.Is(err, host.ErrUnavailable) {
				t.Fatalf("%s: %v, want ErrUnavailable", tc.in, err)
			}
		})
	}
}

func listErr(b []byte) error { _, _, err := host.ParseSequenceList(b, 0); return err }
func refErr(b []byte) error  { _, err := host.ParseSequenceRef(b); return err }
func credErr(b []byte) error {
	if _, err := hostproto.ParseCredentials(b); err != nil {
		return fmt.Errorf("%w: %w", host.ErrUnavailable, err)
	}
	return nil
}

package sts

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestExchangeRefusesMalformedRequests: out of STS's bounds, nothing is
// sent, and the error names the field, not the token.
func TestExchangeRefusesMalformedRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{}, answerWith(200, goodAnswer().String()))
	tests := []struct {
		name string
		edit func(r *Request)
	}{
		{"bad_role_arn_empty", func(r *Request) { r.RoleARN = "" }},
		{"bad_role_arn_too_long", func(r *Request) { r.RoleARN = "arn:aws:iam::1:role/" + strings.Repeat("r", 2048) }},
		{"bad_role_arn_space", func(r *Request) { r.RoleARN = "arn:aws:iam::123456789012:role/a b" }},
		{"bad_session_name_empty", func(r *Request) { r.SessionName = "" }},
		{"bad_session_name_short", func(r *Request) { r.SessionName = "a" }},
		{"bad_session_name_long", func(r *Request) { r.SessionName = strings.Repeat("s", 65) }},
		{"bad_session_name_characters", func(r *Request) { r.SessionName = "actor/7" }},
		{"bad_token_empty", func(r *Request) { r.Token = nil }},
		{"bad_token_short", func(r *Request) { r.Token = []byte("e.y") }},
		{"bad_token_long", func(r *Request) { r.Token = []byte(testToken + strings.Repeat("A", 20000)) }},
		{"bad_token_newline", func(r *Request) { r.Token = []byte(testToken + "\n") }},
		{"bad_token_not_ascii", func(r *Request) { r.Token = append([]byte(testToken), 0xff) }},
		{"bad_policy_too_long", func(r *Request) { r.Policy = `{"Version":"2012-10-17"` + strings.Repeat(" ", 2048) + "}" }},
		{"bad_duration_short", func(r *Request) { r.Duration = 899 }},
		{"bad_duration_long", func(r *Request) { r.Duration = 43201 }},
		{"bad_duration_negative", func(r *Request) { r.Duration = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRequest()
			tt.edit(&r)
			got, err := f.client.Exchange(context.Background(), r)
			if !errors.Is(err, ErrRequest) || got != nil {
				t.Fatalf("Exchange: %v, %v; want ErrRequest", got, err)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "TOKEN") {
				t.Errorf("the error quotes the token: %v", err)
			}
		})
	}
	if n := len(f.sts.requests()); n != 0 {
		t.Fatalf("STS saw %d requests", n)
	}
	// The control: the unedited request goes through on the same client.
	if _, err := f.client.Exchange(context.Background(), testRequest()); err != nil {
		t.Fatalf("the well-formed request: %v", err)
	}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	t.Parallel()
	dial := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no") }
	good := func() Options {
		return Options{Endpoint: &url.URL{Scheme: "https", Host: "sts.us-east-1.amazonaws.com"}, Roots: newCA(t, "r").pool(), Dial: dial}
	}
	parse := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name string
		edit func(o *Options)
	}{
		{"bad_no_endpoint", func(o *Options) { o.Endpoint = nil }},
		{"bad_no_roots", func(o *Options) { o.Roots = nil }},
		{"bad_no_dial", func(o *Options) { o.Dial = nil }},
		{"bad_http", func(o *Options) { o.Endpoint = parse("http://sts.amazonaws.com") }},
		{"bad_no_host", func(o *Options) { o.Endpoint = parse("https:///path") }},
		{"bad_user", func(o *Options) { o.Endpoint = parse("https://u:p@sts.amazonaws.com") }},
		{"bad_query", func(o *Options) { o.Endpoint = parse("https://sts.amazonaws.com/?Action=GetCallerIdentity") }},
		{"bad_fragment", func(o *Options) { o.Endpoint = parse("https://sts.amazonaws.com/#f") }},
		{"bad_negative_timeout", func(o *Options) { o.Timeout = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.edit(&o)
			if c, err := New(o); err == nil {
				t.Fatalf("New accepted %+v: %v", o, c)
			}
		})
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("the control: %v", err)
	}
}

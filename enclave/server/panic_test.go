package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/channel"
)

// TestPanickingMethodAnswersSignedInternal stands a bug in for a method: a
// handler that panics. The call must be answered with a signed internal
// error, logged with its route and a stack but nothing of the request, and
// counted in the readiness reply; the next call is served.
func TestPanickingMethodAnswersSignedInternal(t *testing.T) {
	const marker = "f00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dface"
	tests := []struct {
		name  string
		route string
		crash func()
	}{
		{"runtime_error", "v1/derive-address", func() {
			var xs []int
			_ = xs[len(xs)]
		}},
		{"panic_with_secret_value", "dev/derive-address", func() { panic("key " + marker) }},
	}
	f := newFixture(t)
	var logs bytes.Buffer
	f.srv.TestOnlySetLogger(slog.New(slog.NewJSONHandler(&logs, nil)))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			f.srv.TestOnlyReplaceMethod(tt.route, func(context.Context, *service.Request) (any, error) {
				tt.crash()
				return nil, nil
			})
			params := map[string]string{"operator_omni": marker}
			if strings.HasPrefix(tt.route, "dev/") {
				params = map[string]string{"omni_account": marker}
			}
			body := f.request(t, tt.route, params)
			r := f.srv.Handle(context.Background(), &channel.Call{Route: tt.route, Body: body, Chain: f.chain})
			if r.Status != 500 {
				t.Fatalf("status %d, want 500: %s", r.Status, r.Body)
			}
			resp, err := envelope.VerifyResponse(r.Body, body, func(string) *ecdsa.PublicKey { return f.srv.TestOnlyResponseKey() })
			if err != nil {
				t.Fatalf("the answer to a panicking call is not signed: %v", err)
			}
			if resp.Err == nil || resp.Err.Code != api.CodeInternal {
				t.Fatalf("answer %+v, want a signed %s", resp, api.CodeInternal)
			}
			line := logs.String()
			if !strings.Contains(line, `"msg":"call panicked"`) || !strings.Contains(line, `"route":"`+tt.route+`"`) ||
				!strings.Contains(line, "panic_test.go:") {
				t.Errorf("log has no route and stack:\n%s", line)
			}
			payload := strings.Split(string(body), ".")[1]
			decoded, _ := base64.RawURLEncoding.DecodeString(payload)
			for _, secret := range []string{marker, payload, string(decoded)} {
				if strings.Contains(line, secret) {
					t.Errorf("log carries the request:\n%s", line)
				}
			}
			ready := f.srv.Handle(context.Background(), &channel.Call{Route: channel.RouteReady})
			var rd api.Readiness
			if err := json.Unmarshal(ready.Body, &rd); err != nil || rd.Panics != uint64(i+1) {
				t.Fatalf("readiness %s, want panics %d", ready.Body, i+1)
			}
			next := f.request(t, "dev/sign-message", map[string]string{"omni_account": omni, "message_hex": "00"})
			if r := f.srv.Handle(context.Background(), &channel.Call{Route: "dev/sign-message", Body: next, Chain: f.chain}); r.Status != 200 {
				t.Fatalf("the next call: %d %s", r.Status, r.Body)
			}
		})
	}
}

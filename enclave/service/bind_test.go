package service_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// TestBind: Bind decodes params strictly before the handler runs, never
// lets a refused decode reach it, and answers a nil result as internal.
func TestBind(t *testing.T) {
	called := 0
	var result *api.KeyStatusResponse
	table := service.Table(service.Bind(api.KeyStatus, func(_ context.Context, _ *service.Request, _ *api.KeyStatusRequest) (*api.KeyStatusResponse, error) {
		called++
		return result, nil
	}))
	h := table[api.KeyStatus.Route]
	for _, bad := range []string{`{"x":1}`, `[]`, `{"a":1,"A":2}`, `null1`} {
		if _, err := h(context.Background(), &service.Request{Params: json.RawMessage(bad)}); api.CodeOf(err) != api.CodeBadRequest {
			t.Errorf("params %s: %v, want bad_request", bad, err)
		}
	}
	if called != 0 {
		t.Fatalf("the handler ran %d times on params it must refuse", called)
	}
	if _, err := h(context.Background(), &service.Request{Params: json.RawMessage(`{}`)}); api.CodeOf(err) != api.CodeInternal || called != 1 {
		t.Fatalf("nil result: %v (called %d), want internal", err, called)
	}
	result = &api.KeyStatusResponse{Ready: true}
	if out, err := h(context.Background(), &service.Request{Params: json.RawMessage(`{}`)}); err != nil || out.(*api.KeyStatusResponse) != result {
		t.Fatalf("result: %v, %v", out, err)
	}
}

// TestTableRefusesARouteBoundTwice: wiring one route twice is a start-up
// failure, not a silent overwrite.
func TestTableRefusesARouteBoundTwice(t *testing.T) {
	h := func(context.Context, *service.Request, *api.KeyStatusRequest) (*api.KeyStatusResponse, error) {
		return nil, nil
	}
	for name, f := range map[string]func(){
		"bad_table": func() { service.Table(service.Bind(api.KeyStatus, h), service.Bind(api.KeyStatus, h)) },
		"bad_merge": func() {
			service.Merge(service.Table(service.Bind(api.KeyStatus, h)), service.Table(service.Bind(api.KeyStatus, h)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("a route bound twice was accepted")
				}
			}()
			f()
		})
	}
}

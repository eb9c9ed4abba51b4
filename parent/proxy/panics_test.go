package proxy_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nitro-signer/nitro-signer/internal/channel"
	"github.com/nitro-signer/nitro-signer/parent/proxy"
)

// readyEnclave answers readiness with body.
type readyEnclave struct{ body string }

func (r *readyEnclave) Call(context.Context, *channel.Call) (channel.Reply, error) {
	return channel.Reply{Status: 200, Body: []byte(r.body)}, nil
}

// TestEnclavePanicsAreExported: the count of recovered panics the enclave
// reports in its readiness reply is the parent's
// signer_enclave_panics_total, and it follows the enclave down to 0 when a
// restarted enclave reports 0; a reply without the count leaves it as it was.
func TestEnclavePanicsAreExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := &readyEnclave{}
	p := proxy.New(proxy.Options{Enclave: e, MaxBody: 1024, Timeout: time.Second, MaxConcurrent: 4, Metrics: proxy.NewMetrics(reg)})
	srv := httptest.NewUnstartedServer(p)
	srv.TLS = &tls.Config{}
	srv.StartTLS()
	defer srv.Close()
	c := srv.Client()
	for _, tt := range []struct {
		name, body string
		want       float64
	}{
		{"none_yet", `{"ready":true,"panics":0}`, 0},
		{"two_recovered", `{"ready":true,"panics":2}`, 2},
		{"bad_reply_without_count", `{"ready":true}`, 2},
		{"bad_reply_not_json", `not json`, 2},
		{"enclave_restarted", `{"ready":true,"panics":0}`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.body = tt.body
			resp, err := c.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("readyz %d", resp.StatusCode)
			}
			if got := counterValue(t, reg, "signer_enclave_panics_total"); got != tt.want {
				t.Fatalf("signer_enclave_panics_total %v, want %v", got, tt.want)
			}
		})
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

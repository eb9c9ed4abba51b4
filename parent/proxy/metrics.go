package proxy

import (
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the parent's Prometheus metrics.
type Metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	inflight    prometheus.Gauge
	ready       prometheus.Gauge
	Connections prometheus.Gauge
	// enclavePanics is the enclave's count of recovered panics, as its
	// last readiness reply gave it.
	enclavePanics atomic.Uint64
}

// NewMetrics creates the metrics and registers them with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_parent_requests_total", Help: "Requests by route and HTTP status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signer_parent_request_duration_seconds", Help: "Request latency by route.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signer_parent_requests_in_flight", Help: "Requests in progress.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signer_parent_enclave_ready", Help: "1 if the enclave reported ready at the last /readyz.",
		}),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signer_parent_enclave_connections", Help: "Live channel connections to the enclave.",
		}),
	}
	// The enclave has no metrics listener: it counts the calls it
	// recovered from a panic and reports the count in every readiness
	// reply; the parent exports the last one it saw. It starts again at 0
	// when the enclave restarts, as a counter does when its process does.
	panics := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "signer_enclave_panics_total",
		Help: "Calls the enclave recovered from a panic since it booted, as of the last /readyz (any rise is a bug to report).",
	}, func() float64 { return float64(m.enclavePanics.Load()) })
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inflight, m.ready, m.Connections, panics)
	}
	return m
}

func (m *Metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// observeReadiness takes what the parent exports from a readiness reply.
func (m *Metrics) observeReadiness(body []byte) {
	var r struct {
		Panics *uint64 `json:"panics"`
	}
	if json.Unmarshal(body, &r) == nil && r.Panics != nil {
		m.enclavePanics.Store(*r.Panics)
	}
}

package proxy

import (
	"strconv"
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
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inflight, m.ready, m.Connections)
	}
	return m
}

func (m *Metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

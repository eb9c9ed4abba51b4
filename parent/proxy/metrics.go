package proxy

import (
	"encoding/json"

	"strconv"
	"sync/atomic"
	"time"

	"github.com/nitro-signer/nitro-signer/api"

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
	// keyring is how the enclave's keyring stands against the store, as
	// its last readiness reply gave it.
	keyring *prometheus.GaugeVec
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
	m.keyring = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "signer_enclave_keyring",
		Help: "The enclave's keyring as of the last /readyz: generation, k3_epoch, newest_sequence (in the store), " +
			"sequences_behind (newer, not yet readable), refused_sequences (newer, refused), epochs_behind (named by callers, not held).",
	}, []string{"field"})
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inflight, m.ready, m.Connections, panics, m.keyring)
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
		api.Readiness
	}
	if json.Unmarshal(body, &r) != nil {
		return
	}
	if r.Panics != nil {
		m.enclavePanics.Store(*r.Panics)
	}
	for field, v := range map[string]float64{
		"generation": float64(r.Generation), "k3_epoch": float64(r.Epoch), "newest_sequence": float64(r.NewestSequence),
		"sequences_behind": float64(r.SequencesBehind), "refused_sequences": float64(r.RefusedSequences),
		"epochs_behind": float64(r.EpochsBehind),
	} {
		m.keyring.WithLabelValues(field).Set(v)
	}
}

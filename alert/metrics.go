package alert

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the service's Prometheus metrics. Labels carry tiers, client
// IDs, error codes and sources — never anything about a patient.
type Metrics struct {
	Registry *prometheus.Registry

	Lookups    *prometheus.CounterVec // by tier and client
	Errors     *prometheus.CounterVec // by error code
	ConnErrors *prometheus.CounterVec // connections fasthttp could not serve, by kind
	Latency    prometheus.Histogram   // lookup service time
	InFlight   prometheus.Gauge
	IndexPlans prometheus.Gauge       // live plans
	Sparse     prometheus.Gauge       // live plans with too little to match on
	Loaded     *prometheus.CounterVec // events applied while loading, by outcome
	Ready      prometheus.Gauge
}

// NewMetrics registers the service's metrics (and Go runtime metrics) on a
// new registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_lookups_total",
			Help: "Lookups answered, by tier and calling client."}, []string{"tier", "client"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_http_errors_total",
			Help: "Requests refused, by error code."}, []string{"code"}),
		ConnErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_http_conn_errors_total",
			Help: "Connections the HTTP server could not serve (a malformed or unreadable request), by kind."}, []string{"kind"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "planflag_lookup_seconds",
			Help:    "Service time of answered lookups, from request read to response written.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3}}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_lookups_in_flight",
			Help: "Lookups being answered now."}),
		IndexPlans: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_index_plans",
			Help: "Live plans in the index."}),
		Sparse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_index_sparse_plans",
			Help: "Live plans with too little to match on (kept, counted)."}),
		Loaded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_load_events_total",
			Help: "Plan events read by the initial load, by outcome."}, []string{"outcome"}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_ready",
			Help: "1 once the index has caught up with its source and lookups are served."}),
	}
	r.MustRegister(m.Lookups, m.Errors, m.ConnErrors, m.Latency, m.InFlight, m.IndexPlans, m.Sparse, m.Loaded, m.Ready,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

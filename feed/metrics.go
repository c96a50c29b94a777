package feed

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the feed's Prometheus metrics. Labels carry outcomes and
// partition numbers, never anything about a patient.
type Metrics struct {
	Events                *prometheus.CounterVec // consumed events by outcome
	Lag                   *prometheus.GaugeVec   // events behind the last stable offset, by partition
	DeadLetterWriteErrors prometheus.Counter
	FetchThrottled        prometheus.Counter   // seconds brokers asked fetches to wait (quotas)
	FetchOK               *prometheus.GaugeVec // unix time of each partition's last fetch the broker answered

	SnapshotWrites   *prometheus.CounterVec // by result: ok, error
	SnapshotPending  prometheus.Gauge       // plans changed since the last written snapshot
	SnapshotLastOK   prometheus.Gauge       // unix time of the last written snapshot
	RedisUp          prometheus.Gauge
	SnapshotLoaded   prometheus.Gauge // plans read from the snapshot at start
	SnapshotDiscards *prometheus.CounterVec
}

// NewMetrics registers the feed's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_feed_events_total",
			Help: "Plan-store events consumed from Kafka, by outcome (upserted, withdrawn, stale, dead_letter; withdrawal_field_ignored counts withdrawals applied despite a malformed field they do not need; skipped_by_reader counts the times a reader found its offset outside the log and moved to its start; aborted_transaction counts events of aborted transactions, never applied)."}, []string{"outcome"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "planflag_feed_lag_events",
			Help: "Events between the last applied one and the partition's last stable offset (its high-water mark unless a transaction is open)."}, []string{"partition"}),
		DeadLetterWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "planflag_feed_dead_letter_write_errors_total",
			Help: "Refused events that could not be copied to the dead-letter topic."}),
		FetchThrottled: prometheus.NewCounter(prometheus.CounterOpts{Name: "planflag_feed_fetch_throttled_seconds_total",
			Help: "Time brokers asked the feed's fetches to wait, summed over responses: the client ID is over a broker quota (each partition's reader may be asked separately)."}),
		FetchOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "planflag_feed_last_fetch_success_timestamp_seconds",
			Help: "Unix time of the last fetch of the partition that the broker answered, records or none (a fetch waits up to its MaxWait for them): while the brokers cannot be reached it stops moving, and the lag, measured at each fetch, is not told. Alert when it is more than a minute old: withdrawals are not being read."}, []string{"partition"}),
		SnapshotWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_snapshot_writes_total",
			Help: "Snapshot writes to Redis, by result."}, []string{"result"}),
		SnapshotPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_snapshot_pending_plans",
			Help: "Plans changed since the last snapshot write (grows while Redis is away)."}),
		SnapshotLastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_snapshot_last_success_timestamp_seconds",
			Help: "Unix time of the last successful snapshot write."}),
		RedisUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_redis_up",
			Help: "1 if the last Redis operation succeeded."}),
		SnapshotLoaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_snapshot_loaded_plans",
			Help: "Plans (live and withdrawn markers) read from the Redis snapshot at start."}),
		SnapshotDiscards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_snapshot_discarded_total",
			Help: "Snapshots not used at start, by reason."}, []string{"reason"}),
	}
	reg.MustRegister(m.Events, m.Lag, m.DeadLetterWriteErrors, m.FetchThrottled, m.FetchOK, m.SnapshotWrites, m.SnapshotPending,
		m.SnapshotLastOK, m.RedisUp, m.SnapshotLoaded, m.SnapshotDiscards)
	return m
}

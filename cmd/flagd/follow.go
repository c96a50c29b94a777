package main

import (
	"context"
	"errors"
	"time"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// follow fills the index from Kafka — warm from the Redis snapshot when
// there is a usable one — and returns once it has caught up with the
// topic's end offsets seen at start. The consumer and the snapshot
// writer go on in the background until Close.
func (m *Main) follow(ctx context.Context) error {
	start := time.Now()
	newConsumer := func() *feed.Consumer {
		var recs feed.Recorders
		if m.snaps != nil {
			recs = append(recs, m.snaps)
		}
		if m.pusher != nil {
			recs = append(recs, m.pusher)
		}
		var rec feed.Recorder
		if len(recs) > 0 {
			rec = recs
		}
		return feed.NewConsumer(feed.KafkaConfig{Brokers: m.Config.KafkaBrokers, Topic: m.Config.KafkaTopic,
			DeadLetterTopic: m.Config.KafkaDeadLetters, ClientID: m.Config.KafkaClientID, Auth: m.kafkaAuth, Log: m.Log, Metrics: m.feedM}, m.ix, rec)
	}
	cons := newConsumer()
	if err := cons.Prepare(ctx); err != nil {
		return err
	}
	restoreGC := feed.CatchUpGC(400)
	defer restoreGC()
	m.Log.Info("following plan-store topic", "topic", m.Config.KafkaTopic, "partitions", len(cons.Partitions()))
	var from feed.Offsets
	if m.snaps != nil {
		if ret, err := cons.DeleteRetention(ctx); err != nil {
			m.Log.Warn("topic's delete.retention.ms not read; -snapshot.max-age used as given", "err", err.Error())
		} else if age, lowered := m.snaps.FitRetention(ret); lowered {
			m.Log.Warn("-snapshot.max-age lowered to half the topic's delete.retention.ms: an older snapshot may predate a tombstone the log no longer holds",
				"max_age", age.String(), "delete_retention", ret.String())
		}
		off, st, err := m.snaps.Load(ctx, m.ix, cons.Usable)
		switch {
		case err == nil:
			from = off
			m.Log.Info("warm start from snapshot", "plans", st.Entries, "live", st.Live, "withdrawn", st.Withdrawn,
				"unreadable", st.DeadLetters, "seconds", st.Seconds)
		case errors.Is(err, feed.ErrNoSnapshot):
			// The withdrawals of a snapshot not used are kept (Load).
			m.Log.Info("full replay from Kafka", "why", err.Error(), "withdrawals_kept_from_snapshot", st.Withdrawn)
		default:
			m.Log.Warn("snapshot not read; full replay from Kafka", "err", err.Error())
			if st.Entries > 0 {
				// Start clean rather than replay over part of a snapshot.
				m.ix = matcher.NewIndex(nil)
				m.api.SetMatcher(m.ix)
				cons = newConsumer()
				if err := cons.Prepare(ctx); err != nil {
					return err
				}
			}
			// But keep the snapshot's withdrawals, as many as Redis gives:
			// the replay alone may bring back a plan whose withdrawal only
			// the snapshot still holds (feed.Snapshots.Load).
			// Bounded: a Redis that takes connections but stops answering
			// must not hold the replay back for minutes.
			kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			kept, err := m.snaps.KeepWithdrawals(kctx, m.ix)
			cancel()
			if err != nil {
				m.Log.Warn("snapshot's withdrawals not all read; replaying with those that were", "withdrawals_kept_from_snapshot", kept.Withdrawn, "err", err.Error())
			} else {
				m.Log.Info("snapshot's withdrawals kept for the replay", "withdrawals_kept_from_snapshot", kept.Withdrawn)
			}
		}
		m.loading.Add(1)
		go func() {
			defer m.loading.Done()
			m.snaps.Run(ctx)
		}()
	}
	if m.pusher != nil {
		m.loading.Add(1)
		go func() {
			defer m.loading.Done()
			m.pusher.Run(ctx)
		}()
	}
	m.loading.Add(1)
	go func() {
		defer m.loading.Done()
		if err := cons.Run(ctx, from); err != nil {
			m.Log.Error("kafka consumer stopped", "err", err.Error())
		}
	}()
	m.loading.Add(1)
	go func() {
		defer m.loading.Done()
		m.gaugeIndex(ctx)
	}()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cons.CaughtUp():
			m.Log.Info("caught up with the plan-store topic", "seconds", time.Since(start).Seconds())
			return nil
		case <-tick.C:
			done, total := cons.CatchUpProgress()
			m.Log.Info("catching up with the plan-store topic", "live", m.ix.Live(),
				"offsets_done", done, "offsets_total", total, "percent", percent(done, total))
		}
	}
}

// gaugeIndex keeps the index-size metrics current while the feed runs.
func (m *Main) gaugeIndex(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.metrics.IndexPlans.Set(float64(m.ix.Live()))
			m.metrics.Sparse.Set(float64(m.ix.Sparse()))
		}
	}
}

// percent is done as a whole percentage of total (100 when there is nothing
// to do).
func percent(done, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return done * 100 / total
}

package feed_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

func newSnapshots(t *testing.T, topic string, now func() time.Time) (*feed.Snapshots, *feed.Metrics) {
	m := feed.NewMetrics(prometheus.NewRegistry())
	s := feed.NewSnapshots(feed.SnapshotConfig{Addr: feedtest.Redis(t), Topic: topic, Interval: time.Hour, MaxAge: time.Hour,
		Metrics: m, Now: now})
	return s, m
}

// TestSnapshotWarmStart: a replica that follows the topic writes a
// snapshot; a new replica loads it and reads on from its offsets, and ends
// with the same plans, withdrawn ones included.
func TestSnapshotWarmStart(t *testing.T) {
	e := newTopic(t, 3)
	snaps, _ := newSnapshots(t, e.topic, time.Now)
	var msgs []kafka.Message
	for i := range 200 {
		msgs = append(msgs, msg(i, feedtest.Upsert(i, 1)))
	}
	e.publish(msgs...)
	e.publish(msg(5, feedtest.Withdrawn(5, 2)), kafka.Message{Key: []byte(feedtest.PlanID(6))}, msg(7, feedtest.Upsert(7, 3)))

	first := matcher.NewIndex(nil)
	ctx := context.Background()
	if _, _, err := snaps.Load(ctx, first, nil); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Fatalf("load before any snapshot: %v, want ErrNoSnapshot", err)
	}
	c := e.follow(first, snaps, nil)
	if err := snaps.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	// Erasure: a withdrawn plan's entry keeps only its version.
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	for _, i := range []int{5, 6} {
		v := findEntry(t, rdb, e.topic, feedtest.PlanID(i))
		if !strings.HasSuffix(v, "w") || len(v) != 21 {
			t.Errorf("withdrawn plan %d: snapshot entry %q, want version and 'w' only", i, v)
		}
	}

	// Events after the snapshot: the warm replica must read them from Kafka.
	e.publish(msg(8, feedtest.Withdrawn(8, 2)), msg(300, feedtest.Upsert(300, 1)))
	e.waitApplied(c)

	second := matcher.NewIndex(nil)
	snaps2, m2 := newSnapshots(t, e.topic, time.Now)
	probe := feed.NewConsumer(feed.KafkaConfig{Brokers: e.brokers, Topic: e.topic}, second, snaps2)
	if err := probe.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	from, st, err := snaps2.Load(ctx, second, probe.Usable)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if st.Entries != 200 || st.Withdrawn != 2 || testutil.ToFloat64(m2.SnapshotLoaded) != 200 {
		t.Errorf("loaded %+v, want 200 entries with 2 withdrawn", st)
	}
	if second.Live() != 198 {
		t.Errorf("after snapshot: %d live, want 198", second.Live())
	}
	e.follow(second, snaps2, from)
	if first.Live() != second.Live() {
		t.Errorf("warm replica has %d live plans, the first %d", second.Live(), first.Live())
	}
	for i := range 301 {
		if i > 200 && i < 300 {
			continue
		}
		v1, l1 := first.Version(feedtest.PlanID(i))
		v2, l2 := second.Version(feedtest.PlanID(i))
		if v1 != v2 || l1 != l2 {
			t.Errorf("plan %d: first replica v%d live %v, warm replica v%d live %v", i, v1, l1, v2, l2)
		}
	}
	// A stale copy published after the warm start cannot revive plan 6.
	e.publish(msg(6, feedtest.Upsert(6, 50)))
	e.waitApplied(c)
	if found(second, 6) || found(first, 6) {
		t.Error("tombstoned plan came back after a warm start")
	}
}

// TestSnapshotNotUsed: an old snapshot, or one whose offsets the topic does
// not have, is not used, and the next write replaces it.
func TestSnapshotNotUsed(t *testing.T) {
	e := newTopic(t, 1)
	snaps, _ := newSnapshots(t, e.topic, time.Now)
	e.publish(msg(1, feedtest.Upsert(1, 1)), msg(2, feedtest.Upsert(2, 1)))
	e.follow(matcher.NewIndex(nil), snaps, nil)
	ctx := context.Background()
	if err := snaps.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	old, m := newSnapshots(t, e.topic, later)
	ix := matcher.NewIndex(nil)
	if _, _, err := old.Load(ctx, ix, nil); !errors.Is(err, feed.ErrNoSnapshot) || ix.Live() != 0 {
		t.Errorf("snapshot older than MaxAge: err %v, %d plans applied; want ErrNoSnapshot, none", err, ix.Live())
	}
	if got := testutil.ToFloat64(m.SnapshotDiscards.WithLabelValues("too_old")); got != 1 {
		t.Errorf("too_old discards = %v", got)
	}

	fresh, _ := newSnapshots(t, e.topic, time.Now)
	beyond := func(feed.Offsets) error { return errors.New("offset beyond the log end") }
	if _, _, err := fresh.Load(ctx, ix, beyond); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Errorf("unusable offsets: %v", err)
	}
	// The replica that refused the snapshot rewrites it from scratch: plan 2
	// (which it never saw, say) is gone from Redis after its first write.
	fresh.Record([]feed.Applied{{PlanID: feedtest.PlanID(1), Version: 1, Event: feedtest.Upsert(1, 1)}}, feed.Offsets{0: 1})
	if err := fresh.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	if v := findEntry(t, rdb, e.topic, feedtest.PlanID(2)); v != "" {
		t.Errorf("rewritten snapshot still holds a plan the writer did not have: %.25q…", v)
	}
}

// TestSnapshotMonotonic: entries only move to higher versions and offsets
// only forward, whoever writes (two replicas, one behind).
func TestSnapshotMonotonic(t *testing.T) {
	topic := feedtest.Name("mono")
	ahead, _ := newSnapshots(t, topic, time.Now)
	behind, _ := newSnapshots(t, topic, time.Now)
	ctx := context.Background()
	ahead.Record([]feed.Applied{{PlanID: feedtest.PlanID(1), Version: 3}}, feed.Offsets{0: 10})
	if err := ahead.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	behind.Record([]feed.Applied{{PlanID: feedtest.PlanID(1), Version: 2, Event: feedtest.Upsert(1, 2)}}, feed.Offsets{0: 7})
	if err := behind.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	if v := findEntry(t, rdb, topic, feedtest.PlanID(1)); v != "00000000000000000003w" {
		t.Errorf("entry after an older write: %.25q, want the withdrawal at version 3", v)
	}
	if o, _ := rdb.HGet(ctx, "{planflag:"+topic+"}:offsets", "0").Result(); o != "10" {
		t.Errorf("offset after an older write: %s, want 10", o)
	}
}

// TestSnapshotRedisAway: with Redis gone, writes fail and are kept for the
// next try; the metric shows it.
func TestSnapshotRedisAway(t *testing.T) {
	m := feed.NewMetrics(prometheus.NewRegistry())
	s := feed.NewSnapshots(feed.SnapshotConfig{Addr: "127.0.0.1:1", Topic: "t", Metrics: m})
	s.Record([]feed.Applied{{PlanID: "P1", Version: 1}}, feed.Offsets{0: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err == nil {
		t.Fatal("flush with no Redis succeeded")
	}
	if testutil.ToFloat64(m.RedisUp) != 0 || testutil.ToFloat64(m.SnapshotPending) != 1 ||
		testutil.ToFloat64(m.SnapshotWrites.WithLabelValues("error")) != 1 {
		t.Error("metrics do not show the failed write and the kept change")
	}
}

func findEntry(t *testing.T, rdb *redis.Client, topic, plan string) string {
	t.Helper()
	ctx := context.Background()
	for b := range 256 {
		key := fmt.Sprintf("{planflag:%s}:b%03d", topic, b)
		v, err := rdb.HGet(ctx, key, plan).Result()
		if err == nil {
			return v
		}
		if !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
	}
	return ""
}

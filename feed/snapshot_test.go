package feed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	e.publish(upserts(200)...)
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
// only forward, whoever of a generation's writers writes (two replicas, one
// behind, the second started warm from the first's snapshot).
func TestSnapshotMonotonic(t *testing.T) {
	topic := feedtest.Name("mono")
	ahead, _ := newSnapshots(t, topic, time.Now)
	ctx := context.Background()
	ahead.Record([]feed.Applied{{PlanID: feedtest.PlanID(1), Version: 3}}, feed.Offsets{0: 10})
	ahead.RecordHead(time.Now(), feed.Offsets{0: 10})
	if err := ahead.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	behind, m := newSnapshots(t, topic, time.Now)
	if _, _, err := behind.Load(ctx, matcher.NewIndex(nil), nil); err != nil {
		t.Fatal(err)
	}
	behind.Record([]feed.Applied{{PlanID: feedtest.PlanID(1), Version: 2, Event: feedtest.Upsert(1, 2)}}, feed.Offsets{0: 7})
	if err := behind.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.SnapshotWrites.WithLabelValues("ok")); got != 1 {
		t.Fatalf("the warm replica's write: %v ok, want 1", got)
	}
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	if v := findEntry(t, rdb, topic, feedtest.PlanID(1)); v != "00000000000000000003w" {
		t.Errorf("entry after an older write: %.25q, want the withdrawal at version 3", v)
	}
	if o, _ := rdb.HGet(ctx, genKey(t, rdb, topic, "offsets"), "0").Result(); o != "10" {
		t.Errorf("offset after an older write: %s, want 10", o)
	}
}

// TestSnapshotReplaced: a replica that found the snapshot unusable replays
// the topic and writes a generation of its own, which replaces the shared
// one; the replica that wrote the old one stops writing rather than move
// the new one's offsets past events the new one does not hold. (Before
// generations, the second replica's first write deleted the snapshot and
// the first replica's next write moved the offsets past a withdrawal the
// snapshot no longer held: a warm start brought the plan back.)
func TestSnapshotReplaced(t *testing.T) {
	topic := feedtest.Name("replaced")
	ctx := context.Background()
	b, mb := newSnapshots(t, topic, time.Now)
	x, y := feedtest.PlanID(1), feedtest.PlanID(2)
	// B: X published at offset 0, withdrawn at offset 1.
	b.Record([]feed.Applied{{PlanID: x, Version: 1, Event: feedtest.Upsert(1, 1)}}, feed.Offsets{0: 1})
	b.Record([]feed.Applied{{PlanID: x, Version: 2}}, feed.Offsets{0: 2})
	b.RecordHead(time.Now(), feed.Offsets{0: 2})
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A starts, refuses the snapshot, replays from the start and writes
	// after reading offset 0 only (at the head then, say, for the test).
	a, _ := newSnapshots(t, topic, time.Now)
	refuse := func(feed.Offsets) error { return errors.New("a partition was added") }
	if _, _, err := a.Load(ctx, matcher.NewIndex(nil), refuse); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Fatal(err)
	}
	a.Record([]feed.Applied{{PlanID: x, Version: 1, Event: feedtest.Upsert(1, 1)}}, feed.Offsets{0: 1})
	a.RecordHead(time.Now(), feed.Offsets{0: 1})
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// B's next write, one new plan at offset 2, is not made.
	b.Record([]feed.Applied{{PlanID: y, Version: 1, Event: feedtest.Upsert(2, 1)}}, feed.Offsets{0: 3})
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(mb.SnapshotWrites.WithLabelValues("stopped")); got != 1 {
		t.Errorf("B's writes stopped %v times, want 1", got)
	}
	// A third replica starts warm from A's generation: X is live there, so
	// it must read Kafka on from offset 1, where X's withdrawal is.
	c, _ := newSnapshots(t, topic, time.Now)
	ix := matcher.NewIndex(nil)
	from, _, err := c.Load(ctx, ix, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, live := ix.Version(x); live && from[0] > 1 {
		t.Errorf("X is live after a warm start that reads on from offset %d, past its withdrawal at 1", from[0])
	}
	if _, live := ix.Version(y); live || from[0] != 1 {
		t.Errorf("warm start from %v with Y live=%v: B's write after the switch landed", from, live)
	}
	// The replaced generation's data is gone from Redis.
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	if keys, _ := rdb.Keys(ctx, "{planflag:"+topic+"}:*").Result(); len(keys) > 3+256 {
		t.Errorf("%d keys under the topic: the replaced generation was not deleted", len(keys))
	}
}

// TestSnapshotLostData: when Redis loses the snapshot (restarted empty, or
// its keys evicted), a replica's next write would hold only what changed
// since its last one; it stops writing instead, and no snapshot is there to
// start warm from until a replica replays the topic.
func TestSnapshotLostData(t *testing.T) {
	topic := feedtest.Name("lost")
	ctx := context.Background()
	s, m := newSnapshots(t, topic, time.Now)
	for i := range 200 {
		s.Record([]feed.Applied{{PlanID: feedtest.PlanID(i), Version: 1, Event: feedtest.Upsert(i, 1)}}, feed.Offsets{0: int64(i + 1)})
	}
	s.RecordHead(time.Now(), feed.Offsets{0: 200})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "{planflag:"+topic+"}:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("snapshot keys: %v, %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil { // Redis restarted empty
		t.Fatal(err)
	}
	s.Record([]feed.Applied{{PlanID: feedtest.PlanID(500), Version: 1, Event: feedtest.Upsert(500, 1)}}, feed.Offsets{0: 201})
	s.RecordHead(time.Now(), feed.Offsets{0: 201})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.SnapshotWrites.WithLabelValues("stopped")); got != 1 {
		t.Errorf("writes stopped %v times, want 1", got)
	}
	w, _ := newSnapshots(t, topic, time.Now)
	ix := matcher.NewIndex(nil)
	if from, st, err := w.Load(ctx, ix, nil); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Errorf("warm start after the loss: %+v from %v, %v; want ErrNoSnapshot (it would hold 1 of 201 plans)", st, from, err)
	}
	// Part of the data gone (an eviction): the same.
	s2, m2 := newSnapshots(t, topic, time.Now)
	s2.Record([]feed.Applied{{PlanID: feedtest.PlanID(1), Version: 1, Event: feedtest.Upsert(1, 1)}}, feed.Offsets{0: 1})
	s2.RecordHead(time.Now(), feed.Offsets{0: 1})
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, genKey(t, rdb, topic, "alive")).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newSnapshotsLoad(t, topic); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Errorf("warm start from a generation whose data is gone: %v, want ErrNoSnapshot", err)
	}
	s2.Record([]feed.Applied{{PlanID: feedtest.PlanID(2), Version: 1, Event: feedtest.Upsert(2, 1)}}, feed.Offsets{0: 2})
	if err := s2.Flush(ctx); err != nil || testutil.ToFloat64(m2.SnapshotWrites.WithLabelValues("stopped")) != 1 {
		t.Errorf("write to a generation whose data is gone: %v; want it stopped", err)
	}
}

func newSnapshotsLoad(t *testing.T, topic string) (feed.Offsets, feed.SnapshotStats, error) {
	s, _ := newSnapshots(t, topic, time.Now)
	return s.Load(context.Background(), matcher.NewIndex(nil), nil)
}

// TestSnapshotAge: a snapshot's age is how long ago its offsets were last
// at the log's head, not when it was last written: a replica that cannot
// reach Kafka but writes to Redis every interval does not keep old offsets
// usable past MaxAge; one at the head of an idle topic does.
func TestSnapshotAge(t *testing.T) {
	topic := feedtest.Name("age")
	t0 := time.Now()
	now := t0
	clock := func() time.Time { return now }
	s, _ := newSnapshots(t, topic, clock) // MaxAge 1h
	ctx := context.Background()
	s.Record([]feed.Applied{{PlanID: feedtest.PlanID(1), Version: 1, Event: feedtest.Upsert(1, 1)}}, feed.Offsets{0: 1})
	s.RecordHead(t0, feed.Offsets{0: 1})
	for h := 0; h <= 25; h++ { // hourly writes, the consumer cut off from Kafka
		now = t0.Add(time.Duration(h) * time.Hour)
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s2, m := newSnapshots(t, topic, clock)
	if off, _, err := s2.Load(ctx, matcher.NewIndex(nil), nil); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Errorf("snapshot whose offsets %v were last at the head 25h ago: %v, want ErrNoSnapshot (MaxAge 1h)", off, err)
	}
	if got := testutil.ToFloat64(m.SnapshotDiscards.WithLabelValues("too_old")); got != 1 {
		t.Errorf("too_old discards = %v", got)
	}
	// At the head of an idle topic, the consumer reports it every refresh.
	s.RecordHead(now.Add(-time.Minute), feed.Offsets{0: 1})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s3, _ := newSnapshots(t, topic, clock)
	if _, _, err := s3.Load(ctx, matcher.NewIndex(nil), nil); err != nil {
		t.Errorf("snapshot at the head a minute ago: %v", err)
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

// genKey is the current snapshot generation's key with the given suffix.
func genKey(t *testing.T, rdb *redis.Client, topic, suffix string) string {
	t.Helper()
	gen, err := rdb.HGet(context.Background(), "{planflag:"+topic+"}:meta", "gen").Result()
	if err != nil {
		t.Fatalf("snapshot generation: %v", err)
	}
	return fmt.Sprintf("{planflag:%s}:%s:%s", topic, gen, suffix)
}

// findEntry is plan's entry in the current snapshot generation, or "".
func findEntry(t *testing.T, rdb *redis.Client, topic, plan string) string {
	t.Helper()
	ctx := context.Background()
	for b := range 256 {
		v, err := rdb.HGet(ctx, genKey(t, rdb, topic, fmt.Sprintf("b%03d", b)), plan).Result()
		if err == nil {
			return v
		}
		if !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
	}
	return ""
}

// TestSnapshotLegacy: a snapshot written before generations (buckets and
// offsets under the topic's tag, meta without a generation) is not used,
// and the replica that replays writes a generation and deletes it.
func TestSnapshotLegacy(t *testing.T) {
	topic := feedtest.Name("legacy")
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	tag := "{planflag:" + topic + "}"
	if err := rdb.HSet(ctx, tag+":b007", feedtest.PlanID(1), "00000000000000000001w").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, tag+":offsets", "0", "5")
	rdb.HSet(ctx, tag+":meta", "written_at", time.Now().Unix(), "topic", topic)
	s, m := newSnapshots(t, topic, time.Now)
	if _, _, err := s.Load(ctx, matcher.NewIndex(nil), nil); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Fatalf("legacy snapshot: %v, want ErrNoSnapshot", err)
	}
	if got := testutil.ToFloat64(m.SnapshotDiscards.WithLabelValues("format")); got != 1 {
		t.Errorf("format discards = %v", got)
	}
	s.Record([]feed.Applied{{PlanID: feedtest.PlanID(2), Version: 1, Event: feedtest.Upsert(2, 1)}}, feed.Offsets{0: 1})
	s.RecordHead(time.Now(), feed.Offsets{0: 1})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, tag+":b007", tag+":offsets").Result(); n != 0 {
		t.Errorf("%d legacy keys left after a generation was written", n)
	}
	if v := findEntry(t, rdb, topic, feedtest.PlanID(2)); v == "" {
		t.Error("the new generation does not hold plan 2")
	}
}

// A generation that lost some buckets (Redis evicting under an allkeys-*
// policy, which takes the alive key, written at every write, last) is not
// used: its plans in the lost buckets would be missing for good. The
// withdrawals in the buckets left are still applied. A generation whose
// buckets carry no marks at all was written before marks and is replaced.
func TestSnapshotEvictedBuckets(t *testing.T) {
	topic := feedtest.Name("evicted")
	ctx := context.Background()
	snapshotWithdrawing5(t, topic)
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	// Evict the bucket of plan 7 (unless it is plan 5's too: then plan 8's).
	bucketWith := func(i int) string {
		for b := range 256 {
			k := genKey(t, rdb, topic, fmt.Sprintf("b%03d", b))
			if ok, _ := rdb.HExists(ctx, k, feedtest.PlanID(i)).Result(); ok {
				return k
			}
		}
		t.Fatalf("plan %d in no bucket", i)
		return ""
	}
	victim := bucketWith(7)
	if victim == bucketWith(5) {
		victim = bucketWith(8)
	}
	if err := rdb.Del(ctx, victim).Err(); err != nil {
		t.Fatal(err)
	}
	w, m := newSnapshots(t, topic, time.Now)
	ix := matcher.NewIndex(nil)
	_, st, err := w.Load(ctx, ix, nil)
	if !errors.Is(err, feed.ErrNoSnapshot) || !strings.Contains(err.Error(), "1 of its 256 buckets are gone") {
		t.Fatalf("warm start with a bucket evicted: %v, want the snapshot not used", err)
	}
	if got := testutil.ToFloat64(m.SnapshotDiscards.WithLabelValues("lost")); got != 1 {
		t.Errorf("lost discards = %v", got)
	}
	if v, _ := ix.Version(feedtest.PlanID(5)); v != 2 || ix.Live() != 0 || st.Withdrawn != 1 {
		t.Errorf("from the snapshot not used: plan 5 at version %d, %d live, %d withdrawals; want only the withdrawal applied", v, ix.Live(), st.Withdrawn)
	}

	// A Redis that may evict any key is warned about at start.
	policy, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.ConfigSet(ctx, "maxmemory-policy", policy["maxmemory-policy"])
	var logs feedtest.LogBuffer
	warned := feed.NewSnapshots(feed.SnapshotConfig{Addr: feedtest.Redis(t), Topic: topic, MaxAge: time.Hour,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	defer warned.Close(time.Second)
	warned.Load(ctx, matcher.NewIndex(nil), nil)
	if !strings.Contains(logs.String(), "maxmemory_policy=allkeys-lru") {
		t.Errorf("no warning of the eviction policy: %q", logs.String())
	}

	// Marks gone from every bucket: a generation from before marks.
	for b := range 256 {
		rdb.HDel(ctx, genKey(t, rdb, topic, fmt.Sprintf("b%03d", b)), "")
	}
	w2, m2 := newSnapshots(t, topic, time.Now)
	if _, _, err := w2.Load(ctx, matcher.NewIndex(nil), nil); !errors.Is(err, feed.ErrNoSnapshot) {
		t.Fatalf("a generation without marks: %v, want it not used", err)
	}
	if got := testutil.ToFloat64(m2.SnapshotDiscards.WithLabelValues("format")); got != 1 {
		t.Errorf("format discards = %v", got)
	}
}

// A snapshot may be no older than half the topic's delete.retention.ms,
// whatever MaxAge says: older, it may predate a tombstone the log has let go.
func TestSnapshotFitRetention(t *testing.T) {
	brokers := feedtest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := feedtest.Name("retention")
	compactingTopic(t, ctx, brokers, topic, kafka.ConfigEntry{ConfigName: "delete.retention.ms", ConfigValue: "3600000"})
	c := feed.NewConsumer(feed.KafkaConfig{Brokers: brokers, Topic: topic}, matcher.NewIndex(nil), nil)
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	ret, err := c.DeleteRetention(ctx)
	if err != nil || ret != time.Hour {
		t.Fatalf("delete retention %v, %v; want 1h", ret, err)
	}
	s := feed.NewSnapshots(feed.SnapshotConfig{Addr: feedtest.Redis(t), Topic: topic, MaxAge: 12 * time.Hour})
	defer s.Close(time.Second)
	if age, lowered := s.FitRetention(ret); age != 30*time.Minute || !lowered {
		t.Errorf("max age %v (lowered %v), want 30m", age, lowered)
	}
	if age, lowered := s.FitRetention(ret); age != 30*time.Minute || lowered {
		t.Errorf("again: max age %v (lowered %v), want 30m as it was", age, lowered)
	}
	// A topic of the broker's defaults: 24h, and the default 12h stands.
	e := newTopic(t, 1)
	d := feed.NewConsumer(feed.KafkaConfig{Brokers: e.brokers, Topic: e.topic}, matcher.NewIndex(nil), nil)
	if err := d.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if ret, err := d.DeleteRetention(ctx); err != nil || ret != 24*time.Hour {
		t.Errorf("default delete retention %v, %v; want 24h", ret, err)
	}
}

// A snapshot Redis cannot give whole (here an ACL that refuses one bucket;
// in life Redis failing part way): the replica replays the topic, and
// keeps the withdrawals of the buckets it can read, so that a late copy of
// an older upsert in the log cannot bring a withdrawn plan back.
func TestSnapshotWithdrawalsKeptWhenRedisFails(t *testing.T) {
	topic := feedtest.Name("partial")
	ctx := context.Background()
	snapshotWithdrawing5(t, topic)
	admin := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer admin.Close()
	// A user who may read every key of the snapshot but one bucket: one
	// read in the same pipeline (a group of 16) as the bucket of plan 5,
	// so that a reader giving up on the group loses plan 5's withdrawal.
	b5 := -1
	for b := range 256 {
		if ok, _ := admin.HExists(ctx, genKey(t, admin, topic, fmt.Sprintf("b%03d", b)), feedtest.PlanID(5)).Result(); ok {
			b5 = b
		}
	}
	if b5 < 0 {
		t.Fatal("plan 5 in no bucket")
	}
	victim := genKey(t, admin, topic, fmt.Sprintf("b%03d", b5/16*16+(b5+1)%16))
	user, pw := feedtest.Name("partial"), feedtest.Name("pw")
	rule := []any{"ACL", "SETUSER", user, "on", ">" + pw, "resetkeys", "+@all", "&*",
		"~{planflag:" + topic + "}:meta", "~" + genKey(t, admin, topic, "alive"), "~" + genKey(t, admin, topic, "offsets")}
	for b := range 256 {
		if k := genKey(t, admin, topic, fmt.Sprintf("b%03d", b)); k != victim {
			rule = append(rule, "~"+k)
		}
	}
	if err := admin.Do(ctx, rule...).Err(); err != nil {
		t.Fatalf("acl setuser: %v", err)
	}
	defer admin.Do(ctx, "ACL", "DELUSER", user)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := feed.RedisAuthConfig{User: user, PasswordFile: pwFile}.Build()
	if err != nil {
		t.Fatal(err)
	}
	r := feed.NewSnapshots(feed.SnapshotConfig{Addr: feedtest.Redis(t), Redis: auth, Topic: topic, Interval: time.Hour, MaxAge: time.Hour})
	defer r.Close(time.Second)
	if _, _, err := r.Load(ctx, matcher.NewIndex(nil), nil); err == nil || errors.Is(err, feed.ErrNoSnapshot) {
		t.Fatalf("load with a bucket refused: %v, want Redis's error", err)
	}
	ix := matcher.NewIndex(nil) // as flagd starts again, to replay
	st, err := r.KeepWithdrawals(ctx, ix)
	if err == nil {
		t.Error("a bucket refused, and no error")
	}
	if v, live := ix.Version(feedtest.PlanID(5)); v != 2 || live || st.Withdrawn != 1 || ix.Live() != 0 {
		t.Fatalf("withdrawals kept: plan 5 at version %d (live %v), %d withdrawals, %d live; want plan 5 withdrawn at 2 only", v, live, st.Withdrawn, ix.Live())
	}
	// The replay meets the late copy of plan 5's first upsert: refused.
	var late feed.Event
	if err := json.Unmarshal(feedtest.Upsert(5, 1), &late); err != nil {
		t.Fatal(err)
	}
	if a := ix.Apply([]matcher.Change{late.Change()}); a.Stale != 1 || ix.Live() != 0 {
		t.Errorf("the late upsert of a withdrawn plan applied: %+v", a)
	}
}

// snapshotWithdrawing5 writes a snapshot for topic of 300 plans at version
// 1, plan 5 then withdrawn at version 2, at the log's head.
func snapshotWithdrawing5(t *testing.T, topic string) {
	t.Helper()
	s, _ := newSnapshots(t, topic, time.Now)
	const n = 300
	for i := range n {
		s.Record([]feed.Applied{{PlanID: feedtest.PlanID(i), Version: 1, Event: feedtest.Upsert(i, 1)}}, feed.Offsets{0: int64(i + 1)})
	}
	s.Record([]feed.Applied{{PlanID: feedtest.PlanID(5), Version: 2}}, feed.Offsets{0: n + 1}) // withdrawn
	s.RecordHead(time.Now(), feed.Offsets{0: n + 1})
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

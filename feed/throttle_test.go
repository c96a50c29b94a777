package feed_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

// A broker over its quota for a client answers fetches with nothing and a
// time to wait, and reads nothing more from that connection until the time
// is up. The reader waits as asked: every event arrives, no read fails, and
// no fetch is left hanging on a muted connection (which would time out and
// be sent again on a new one, over and over).
func TestKafkaQuota(t *testing.T) {
	e := newTopic(t, 2)
	const n = 6000 // about 1.8 MB
	e.publish(upserts(n)...)
	client := feedtest.Name("quota-client")
	cl := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 10 * time.Second}
	quota := func(remove bool) {
		res, err := cl.AlterClientQuotas(context.Background(), &kafka.AlterClientQuotasRequest{Entries: []kafka.AlterClientQuotaEntry{{
			Entities: []kafka.AlterClientQuotaEntity{{EntityType: "client-id", EntityName: client}},
			Ops:      []kafka.AlterClientQuotaOps{{Key: "consumer_byte_rate", Value: 128 << 10, Remove: remove}}}}})
		if err == nil {
			for _, en := range res.Entries {
				err = errors.Join(err, en.Error)
			}
		}
		if err != nil {
			t.Fatalf("client quota: %v", err)
		}
	}
	quota(false)
	t.Cleanup(func() { quota(true) })

	var logs feedtest.LogBuffer
	m := feed.NewMetrics(prometheus.NewRegistry())
	ix := matcher.NewIndex(nil)
	c := feed.NewConsumer(feed.KafkaConfig{Brokers: e.brokers, Topic: e.topic, ClientID: client, MaxWait: 50 * time.Millisecond, Metrics: m,
		Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, ix, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, nil) }()
	select {
	case <-c.CaughtUp():
	case <-time.After(60 * time.Second):
		t.Error("not caught up within 60s")
	}
	took := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if !found(ix, i) {
			t.Errorf("plan %d not indexed", i)
		}
	}
	throttled := testutil.ToFloat64(m.FetchThrottled)
	t.Logf("caught up in %v; the broker asked for %.1fs of waits", took.Round(time.Millisecond), throttled)
	if throttled == 0 {
		t.Fatal("the broker never throttled a fetch: the quota did not bite, so this test shows nothing")
	}
	if k := strings.Count(logs.String(), `"msg":"kafka read fail`); k > 0 {
		t.Errorf("%d failed reads logged under a quota; log:\n%s", k, logs.String())
	}
}

// Every fetch the broker answers, records or none, moves the partition's
// planflag_feed_last_fetch_success_timestamp_seconds: an idle topic keeps
// it current, so an alert on its age tells a feed cut off from Kafka (whose
// lag, measured at each fetch, stops being told) from a quiet one.
func TestFetchSuccessTimestamp(t *testing.T) {
	e := newTopic(t, 2)
	e.publish(upserts(10)...)
	m := feed.NewMetrics(prometheus.NewRegistry())
	c := feed.NewConsumer(feed.KafkaConfig{Brokers: e.brokers, Topic: e.topic, MaxWait: 50 * time.Millisecond, Metrics: m},
		matcher.NewIndex(nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, nil) }()
	<-c.CaughtUp()
	ts := func(p string) float64 { return testutil.ToFloat64(m.FetchOK.WithLabelValues(p)) }
	first := ts("0")
	feedtest.Eventually(t, 10*time.Second, "both partitions' timestamps move on while the topic is idle", func() bool {
		return ts("0") > first && ts("1") >= first
	})
	if age := float64(time.Now().Unix()) - ts("1"); age > 5 {
		t.Errorf("partition 1 last fetched %.0fs ago", age)
	}
	cancel()
	<-done
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// runIngest measures the feed against a real broker and Redis: ingest
// rate of a full replay, publish-to-visible latency under steady
// background traffic, and start-up by warm start from the Redis snapshot
// beside a full replay.
func runIngest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka brokers (env KAFKA_BROKERS)")
	redisAddr := fs.String("redis", os.Getenv("REDIS_ADDR"), "Redis address (env REDIS_ADDR)")
	plans := fs.Int("plans", 1_000_000, "plans in the synthetic plan store")
	seed := fs.Uint64("seed", 1, "seed of the synthetic plan store")
	partitions := fs.Int("partitions", 6, "partitions of the (new) topic")
	rate := fs.Float64("rate", 1000, "background event rate while latency is measured")
	dur := fs.Duration("duration", 30*time.Second, "how long latency is measured")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the replay and warm start to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
		defer func() { fmt.Fprintf(stderr, "CPU profile in %s\n", *cpuprofile) }()
		startProfile = func() { _ = pprof.StartCPUProfile(f) }
	}
	if *brokers == "" || *redisAddr == "" {
		return errors.New("give -brokers and -redis (or run: eval \"$(scripts/services.sh up)\")")
	}
	bs := strings.Split(*brokers, ",")
	ctx := context.Background()

	cfg := bench.DefaultConfig()
	cfg.Seed, cfg.Plans, cfg.Queries = *seed, *plans, 0
	start := time.Now()
	ds, err := bench.Generate(cfg)
	if err != nil {
		return err
	}
	msgs, err := bench.EventMessages(ds.Events)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "generated %d events (%.1fs)\n", len(msgs), time.Since(start).Seconds())

	var b [4]byte
	_, _ = rand.Read(b[:])
	topic := "ingest-" + hex.EncodeToString(b[:])
	if err := feed.CreateTopic(ctx, bs, feed.KafkaAuth{}, topic, *partitions, true); err != nil {
		return err
	}
	w := &kafka.Writer{Addr: kafka.TCP(bs...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: 2 * time.Millisecond}
	defer w.Close()
	i := 0
	pub, err := bench.Publish(ctx, w, func() (bench.Message, bool) {
		if i == len(msgs) {
			return bench.Message{}, false
		}
		i++
		return msgs[i-1], true
	}, 0, stderr, nil, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "published %d events in %.1fs\n", pub.Published, pub.Seconds)
	// The live plans at the end of the stream: the background traffic
	// updates them.
	holders := bench.LivePlans(ds.Events)
	live := len(holders)
	ds = nil
	runtime.GC()

	// 1. Full replay into an empty index, with the snapshot writer attached
	//    as in flagd.
	ix := matcher.NewIndex(nil)
	snaps := feed.NewSnapshots(feed.SnapshotConfig{Addr: *redisAddr, Topic: topic, Interval: time.Hour})
	vis := bench.NewVisibleRecorder(snaps)
	cons := feed.NewConsumer(feed.KafkaConfig{Brokers: bs, Topic: topic}, ix, vis)
	if err := cons.Prepare(ctx); err != nil {
		return err
	}
	startProfile()
	restoreGC := feed.CatchUpGC(400) // as flagd does while it catches up
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	start = time.Now()
	go func() { defer wg.Done(); _ = cons.Run(runCtx, nil) }()
	<-cons.CaughtUp()
	replay := time.Since(start)
	restoreGC()
	fmt.Fprintf(stderr, "full replay: %d events in %.1fs (%.0f/s), %d live\n", len(msgs), replay.Seconds(),
		float64(len(msgs))/replay.Seconds(), ix.Live())
	start = time.Now()
	if err := snaps.Flush(ctx); err != nil {
		return err
	}
	snapWrite := time.Since(start)
	fmt.Fprintf(stderr, "snapshot written in %.1fs\n", snapWrite.Seconds())

	// 2. Publish-to-visible latency with background traffic: updates of
	//    existing plans at a fixed rate.
	n := int(*rate * dur.Seconds())
	k := 0
	type sent struct {
		plan    string
		version uint64
	}
	updates := make([]sent, n)
	bg, err := bench.Publish(ctx, w, func() (bench.Message, bool) {
		if k == n {
			return bench.Message{}, false
		}
		h := holders[(k*7919)%len(holders)]
		h.Version++
		h.OccurredAt = time.Now().UTC()
		b, _ := json.Marshal(h)
		updates[k] = sent{h.PlanID, h.Version}
		k++
		return bench.Message{Key: h.PlanID, Value: b}, true
	}, *rate, nil, func(i int, at time.Time) { vis.Sent(updates[i].plan, updates[i].version, at) },
		func(from, to int, at time.Time) {
			for i := from; i < to; i++ {
				vis.Acked(updates[i].plan, updates[i].version, at)
			}
		})
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	lat, fromAck, unseen := vis.Latencies()
	if err := snaps.Flush(ctx); err != nil {
		return err
	}
	stop()
	wg.Wait()
	liveNow := ix.Live()
	ix = nil
	runtime.GC()

	// 3. Warm start: a new replica loads the snapshot and reads on.
	ix2 := matcher.NewIndex(nil)
	snaps2 := feed.NewSnapshots(feed.SnapshotConfig{Addr: *redisAddr, Topic: topic, Interval: time.Hour})
	start = time.Now()
	restoreGC = feed.CatchUpGC(400)
	cons2 := feed.NewConsumer(feed.KafkaConfig{Brokers: bs, Topic: topic}, ix2, snaps2)
	if err := cons2.Prepare(ctx); err != nil {
		return err
	}
	from, sst, err := snaps2.Load(ctx, ix2, cons2.Usable)
	if err != nil {
		return fmt.Errorf("warm start: %w", err)
	}
	loaded := time.Since(start)
	runCtx2, stop2 := context.WithCancel(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); _ = cons2.Run(runCtx2, from) }()
	<-cons2.CaughtUp()
	warm := time.Since(start)
	restoreGC()
	stop2()
	wg.Wait()
	if ix2.Live() != liveNow {
		return fmt.Errorf("warm start has %d live plans, the replayed index had %d", ix2.Live(), liveNow)
	}

	fmt.Fprintf(stdout, "### Feed: %d plans (%d events, %d live) on a %d-partition topic, real Kafka and Redis\n\n",
		*plans, len(msgs), live, *partitions)
	fmt.Fprintln(stdout, "| measure | result |")
	fmt.Fprintln(stdout, "|---|---|")
	fmt.Fprintf(stdout, "| publish (planstore writer, acks=all) | %.0f events/s |\n", float64(pub.Published)/pub.Seconds)
	fmt.Fprintf(stdout, "| full replay from Kafka into the index (ingest) | %.1f s, **%.0f events/s** |\n", replay.Seconds(), float64(len(msgs))/replay.Seconds())
	fmt.Fprintf(stdout, "| snapshot write (all plans) | %.1f s |\n", snapWrite.Seconds())
	fmt.Fprintf(stdout, "| publish → visible at %.0f events/s for %v (%d events, %d unseen) | p50 %v, p90 %v, **p99 %v**, max %v |\n",
		*rate, *dur, len(lat), unseen, bench.Percentile(lat, 0.5).Round(time.Millisecond/10), bench.Percentile(lat, 0.9).Round(time.Millisecond/10),
		bench.Percentile(lat, 0.99).Round(time.Millisecond/10), bench.Percentile(lat, 1).Round(time.Millisecond/10))
	fmt.Fprintf(stdout, "| … the producer's part: scheduled send → broker ack (acks=all), per batch | p50 %v, p99 %v |\n",
		bench.Percentile(bg.Acked, 0.5).Round(time.Millisecond/10), bench.Percentile(bg.Acked, 0.99).Round(time.Millisecond/10))
	fmt.Fprintf(stdout, "| … flagd's part: broker ack → visible | p50 %v, p99 %v, max %v |\n",
		bench.Percentile(fromAck, 0.5).Round(time.Millisecond/10), bench.Percentile(fromAck, 0.99).Round(time.Millisecond/10),
		bench.Percentile(fromAck, 1).Round(time.Millisecond/10))
	fmt.Fprintf(stdout, "| start-up, full replay from Kafka | %.1f s |\n", replay.Seconds())
	fmt.Fprintf(stdout, "| start-up, warm from Redis (%d entries loaded in %.1f s, then Kafka from the saved offsets) | **%.1f s** |\n",
		sst.Entries, loaded.Seconds(), warm.Seconds())
	return nil
}

// startProfile starts CPU profiling when -cpuprofile asks for it.
var startProfile = func() {}

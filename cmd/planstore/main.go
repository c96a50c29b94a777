// Command planstore stands in for the care-plan store: it publishes plan
// identifier events to Kafka as the DESIGN.md contract specifies, for demos,
// tests and benchmarks.
//
//	planstore publish -brokers B [-topic T] -events FILE.jsonl [-rate N]
//	planstore publish -brokers B [-topic T] -synthetic N [-seed S] [-rate N]
//	planstore tombstone -brokers B [-topic T] PLAN_ID...
//	planstore serve -events FILE.jsonl -link.key-file KEYS [-addr A] [-redis R]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/feed"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "planstore:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  planstore publish -brokers B [-topic T] -events FILE.jsonl [-rate N]   publish plan events from a file
  planstore publish -brokers B [-topic T] -synthetic N [-seed S]          publish a synthetic plan store
  planstore tombstone -brokers B [-topic T] PLAN_ID...                    withdraw plans for good (null value)
  planstore serve -events F -link.key-file K [-addr A] [-redis R]         the platform side: open plan links, plan API
The topic is created (compacted, -partitions) if it does not exist. publish and
tombstone reach the brokers over TLS and SASL with flagd's -kafka.tls… and
-kafka.sasl… flags ("planstore publish -h" lists them).`)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return flag.ErrHelp
	}
	switch args[0] {
	case "publish":
		return runPublish(ctx, args[1:], stdout, stderr)
	case "tombstone":
		return runTombstone(ctx, args[1:], stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

// common are the flags every command that writes to Kafka takes.
type common struct {
	brokers    string
	topic      string
	partitions int
	auth       func() feed.KafkaAuthConfig
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.brokers, "brokers", os.Getenv("KAFKA_BROKERS"), "Kafka bootstrap brokers, comma-separated (env KAFKA_BROKERS)")
	fs.StringVar(&c.topic, "topic", feed.DefaultTopic, "plan-store topic")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions when the topic has to be created")
	c.auth = feed.KafkaAuthFlags(fs) // as flagd's
}

func (c *common) writer(ctx context.Context) (*kafka.Writer, error) {
	var brokers []string
	for _, b := range strings.Split(c.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return nil, errors.New("no brokers: give -brokers host:port (or set KAFKA_BROKERS)")
	}
	if c.partitions < 1 {
		return nil, errors.New("-partitions must be at least 1")
	}
	auth, err := c.auth().Build()
	if err != nil {
		return nil, err
	}
	if err := feed.CreateTopic(ctx, brokers, auth, c.topic, c.partitions, true); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", c.topic, err)
	}
	// Murmur2 partitions keys as the Java client does, so every producer of
	// the topic puts a plan's events on the same partition, in order.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: c.topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: 30 * time.Second}
	if auth.TLS != nil || auth.SASL != nil {
		w.Transport = auth.Transport("planstore")
	}
	return w, nil
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	events := fs.String("events", "", "plan events, one JSON object per line (- for standard input)")
	synthetic := fs.Int("synthetic", 0, "instead of -events: generate a synthetic plan store of this many plans")
	seed := fs.Uint64("seed", 1, "seed of the synthetic plan store")
	rate := fs.Float64("rate", 0, "events per second (0: as fast as the broker takes them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *synthetic < 0 {
		return errors.New("-synthetic must be at least 1 (plans to generate)")
	}
	if (*events == "") == (*synthetic == 0) {
		return errors.New("give one of -events FILE.jsonl or -synthetic N")
	}
	if *rate < 0 {
		return errors.New("-rate must not be negative")
	}
	var next func() (bench.Message, bool)
	var refused int
	var readErr error
	if *synthetic > 0 {
		cfg := bench.DefaultConfig()
		cfg.Seed, cfg.Plans, cfg.Queries = *seed, *synthetic, 0
		fmt.Fprintf(stderr, "generating a synthetic plan store of %d plans (seed %d), at most %d at a time\n",
			cfg.Plans, cfg.Seed, bench.ChunkPlans)
		gen := func(use func(int, *bench.Dataset) error) error { return bench.GenerateEventChunks(cfg, use) }
		var stop func()
		next, stop = syntheticEvents(cfg.Plans, gen, stderr, &readErr)
		defer stop()
	} else {
		r := io.Reader(os.Stdin)
		if *events != "-" {
			f, err := os.Open(*events)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		// A line that is not a valid event is refused (reported by line
		// number and reason, never content) and skipped.
		br := bufio.NewReaderSize(r, 1<<16)
		line := 0
		next = func() (bench.Message, bool) {
			for {
				b, err := feed.ReadLine(br, 1<<20)
				line++
				if len(bytes.TrimSpace(b)) > 0 {
					ev, derr := feed.Decode(b)
					if derr == nil {
						return bench.Message{Key: ev.PlanID, Value: bytes.Clone(b)}, true
					}
					refused++
					fmt.Fprintf(stderr, "line %d refused: %v\n", line, derr)
				}
				if err == io.EOF {
					return bench.Message{}, false
				}
				if err != nil {
					readErr = fmt.Errorf("read events at line %d: %w", line, err)
					return bench.Message{}, false
				}
			}
		}
	}
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	st, err := bench.Publish(ctx, w, next, *rate, stderr, nil, nil)
	fmt.Fprintf(stdout, "published %d events to %s (%d refused lines) in %.1fs (%.0f/s)\n",
		st.Published, c.topic, refused, st.Seconds, float64(st.Published)/max(st.Seconds, 1e-9))
	return errors.Join(err, readErr)
}

func runTombstone(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("tombstone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("give the plan IDs to withdraw")
	}
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, fs.NArg())
	for _, id := range fs.Args() {
		msgs = append(msgs, kafka.Message{Key: []byte(id)})
	}
	return w.WriteMessages(ctx, msgs...)
}

// syntheticEvents runs gen, which hands a synthetic plan store of plans
// plans to use in chunks (bench.GenerateEventChunks: at most
// bench.ChunkPlans each), generating the next chunk while the last is sent,
// and returns the events one by one, each encoded as it is sent: at
// 10,000,000 plans the tool holds about two chunks' data where the whole
// population took 15 GB. Generation starts at the first call of next (so
// that a broker that cannot be reached is reported at once); each chunk
// generated is reported on stderr; a generation or encoding error ends the
// events and is left in *errp. stop ends the generator when the events are
// not all taken.
func syntheticEvents(plans int, gen func(use func(int, *bench.Dataset) error) error, stderr io.Writer,
	errp *error) (next func() (bench.Message, bool), stop func()) {
	type chunk struct {
		events []feed.Event
		made   int           // plans generated with this chunk's
		took   time.Duration // since generation started
	}
	chunks := make(chan chunk) // unbuffered: one chunk sent, one generated
	done := make(chan struct{})
	var genErr error
	var started sync.Once
	generate := func() {
		defer close(chunks)
		start := time.Now()
		made := 0
		genErr = gen(func(_ int, ds *bench.Dataset) error {
			made += len(ds.Holders)
			select {
			case chunks <- chunk{ds.Events, made, time.Since(start)}:
				return nil
			case <-done:
				return errStopped
			}
		})
		if errors.Is(genErr, errStopped) {
			genErr = nil
		}
	}
	var events []feed.Event
	sent := 0
	next = func() (bench.Message, bool) {
		started.Do(func() { go generate() })
		for len(events) == 0 {
			c, ok := <-chunks
			if !ok {
				*errp = genErr // set before chunks was closed
				return bench.Message{}, false
			}
			// Reported here, not by the generator, so that stderr has one
			// writer: the publisher's progress comes from this goroutine.
			fmt.Fprintf(stderr, "generated %d of %d plans (%.1fs)\n", c.made, plans, c.took.Seconds())
			events = c.events
		}
		ev := &events[0]
		b, err := json.Marshal(ev)
		if err != nil {
			*errp = fmt.Errorf("encode synthetic event %d: %w", sent+1, err)
			return bench.Message{}, false
		}
		m := bench.Message{Key: ev.PlanID, Value: b}
		*ev = feed.Event{} // let the event go once sent
		events = events[1:]
		sent++
		return m, true
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			started.Do(func() { close(chunks) }) // never started: it never will
			close(done)
			for range chunks { // wait for the generator to end
			}
		})
	}
	return next, stop
}

var errStopped = errors.New("stopped")

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

// TestPublish publishes a file with a bad line to a new topic: the topic
// is created compacted with the partitions asked for, the good events are
// on it keyed by plan ID, and the bad line is reported by number.
func TestPublish(t *testing.T) {
	brokers := feedtest.Brokers(t)
	topic := feedtest.Name("planstore")
	path := filepath.Join(t.TempDir(), "events.jsonl")
	lines := string(feedtest.Upsert(1, 1)) + "\n{\"family_name\": \"Zebedee\"\n\n" + string(feedtest.Withdrawn(1, 2)) + "\n"
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, []string{"publish", "-brokers", strings.Join(brokers, ","), "-topic", topic,
		"-partitions", "3", "-events", path}, &out, &errs)
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "published 2 events") || !strings.Contains(out.String(), "1 refused") ||
		!strings.Contains(errs.String(), "line 2 refused") {
		t.Errorf("output %q, errors %q", out.String(), errs.String())
	}
	if strings.Contains(errs.String(), "Zebedee") {
		t.Error("the refused line's content was echoed")
	}

	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil || len(parts) != 3 {
		t.Fatalf("topic has %d partitions (%v), want 3", len(parts), err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	res, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"cleanup.policy"}}}})
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" {
				policy = e.ConfigValue
			}
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}
}

// A negative -synthetic is refused as such, not read as "no -synthetic" and
// then reported as a file that cannot be opened.
func TestPublishNegativeSynthetic(t *testing.T) {
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"publish", "-brokers", "127.0.0.1:1", "-synthetic", "-5"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "-synthetic must be at least 1") {
		t.Errorf("error %v, want one saying -synthetic must be at least 1", err)
	}
}

// chunkGen stands in for bench.GenerateEventChunks: three small populations
// handed in turn (or, with fail, the first two and then fail); all is their
// events, last how many of them the third has; returned says when gen has
// returned, with what.
func chunkGen(t *testing.T, fail error) (gen func(func(int, *bench.Dataset) error) error, all []feed.Event, last int, returned chan error) {
	var chunks []*bench.Dataset
	for i := range 3 {
		cfg := bench.DefaultConfig()
		cfg.Seed, cfg.Plans, cfg.Queries = uint64(i+1), 200, 0
		ds, err := bench.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for j := range ds.Events {
			ds.Events[j].PlanID = fmt.Sprintf("C%d-%s", i, ds.Events[j].PlanID)
		}
		all = append(all, ds.Events...)
		chunks = append(chunks, ds)
		last = len(ds.Events)
	}
	all = slices.Clone(all) // the events handed out are cleared once sent
	returned = make(chan error, 1)
	gen = func(use func(int, *bench.Dataset) error) (err error) {
		defer func() { returned <- err }()
		for i, ds := range chunks {
			if i == 2 && fail != nil {
				return fail
			}
			if err := use(i, ds); err != nil {
				return err
			}
		}
		return nil
	}
	return gen, all, last, returned
}

// TestSyntheticEvents: every event of every chunk, in order, keyed by plan
// and encoded as the feed decodes it; progress for each chunk; and a
// generator error after the events it did hand.
func TestSyntheticEvents(t *testing.T) {
	gen, all, _, returned := chunkGen(t, nil)
	var errs feedtest.LogBuffer
	var err error
	next, stop := syntheticEvents(600, gen, &errs, &err)
	defer stop()
	i := 0
	for m, ok := next(); ok; m, ok = next() {
		if i >= len(all) {
			t.Fatalf("more than the %d events generated", len(all))
		}
		ev, derr := feed.Decode(m.Value)
		if derr != nil || m.Key != all[i].PlanID || ev.PlanID != all[i].PlanID || ev.Version != all[i].Version || ev.Type != all[i].Type {
			t.Fatalf("event %d: key %q, decoded %+v (%v), want plan %q version %d", i, m.Key, ev, derr, all[i].PlanID, all[i].Version)
		}
		i++
	}
	if err != nil || i != len(all) {
		t.Fatalf("%d events of %d, error %v", i, len(all), err)
	}
	if <-returned != nil {
		t.Error("the generator failed")
	}
	if n := strings.Count(errs.String(), "generated "); n != 3 || !strings.Contains(errs.String(), " of 600 plans") {
		t.Errorf("progress %q, want a line a chunk", errs.String())
	}

	boom := errors.New("boom")
	gen, all, last, _ := chunkGen(t, boom)
	next, stop = syntheticEvents(600, gen, io.Discard, &err)
	defer stop()
	i = 0
	for _, ok := next(); ok; _, ok = next() {
		i++
	}
	if !errors.Is(err, boom) || i != len(all)-last {
		t.Errorf("%d events then error %v, want %d then boom", i, err, len(all)-last)
	}
}

// Stopping before the events are all taken ends the generator.
func TestSyntheticEventsStop(t *testing.T) {
	gen, _, _, returned := chunkGen(t, nil)
	var err error
	next, stop := syntheticEvents(600, gen, io.Discard, &err)
	if _, ok := next(); !ok {
		t.Fatal("no first event")
	}
	stop()
	select {
	case got := <-returned:
		if !errors.Is(got, errStopped) {
			t.Errorf("generator returned %v, want it stopped", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the generator still runs after stop")
	}
	stop() // twice is harmless
	if err != nil {
		t.Errorf("error %v after a stop", err)
	}
}

// Nothing is generated before the first event is asked for, and a stop
// before it ends nothing that runs.
func TestSyntheticEventsLazy(t *testing.T) {
	ran := false
	gen := func(func(int, *bench.Dataset) error) error { ran = true; return nil }
	var err error
	_, stop := syntheticEvents(10, gen, io.Discard, &err)
	stop()
	if ran || err != nil {
		t.Errorf("generator ran %v, error %v", ran, err)
	}
}

// TestPublishSecure publishes through the broker's TLS + SASL listener with
// flagd's flags, and is refused, with an error saying so, on a wrong
// password.
func TestPublishSecure(t *testing.T) {
	sec := feedtest.SecureKafka(t)
	brokers := feedtest.Brokers(t)
	topic := feedtest.Name("planstore-sasl")
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	lines := string(feedtest.Upsert(1, 1)) + "\n" + string(feedtest.Upsert(2, 1)) + "\n"
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := func(passwordFile string) []string {
		return []string{"publish", "-brokers", strings.Join(sec.SASLBrokers, ","), "-topic", topic, "-events", path,
			"-kafka.tls-ca", sec.CAFile, "-kafka.sasl", "scram-sha-512", "-kafka.sasl-user", sec.User,
			"-kafka.sasl-password-file", passwordFile}
	}
	var out, errs bytes.Buffer
	if err := run(ctx, args(sec.PasswordFile), &out, &errs); err != nil {
		t.Fatalf("publish: %v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "published 2 events") {
		t.Errorf("output %q", out.String())
	}
	// The events are on the topic (counted through the plaintext listener).
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, p := range parts {
		pc, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += last
	}
	if total != 2 {
		t.Errorf("%d events on the topic, want 2", total)
	}

	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errs.Reset()
	err = run(ctx, args(wrong), &out, &errs)
	if !errors.Is(err, feed.ErrKafkaAuth) {
		t.Errorf("with a wrong password: %v, want it refused", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-the-password") {
		t.Error("the error quotes the password")
	}
}

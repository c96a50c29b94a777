package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

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

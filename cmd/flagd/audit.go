package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/feed"
)

// runAudit answers "who looked up plan X, and when" from the audit trail,
// a file (-file) or the Kafka topic (-brokers, -topic), printing the
// matching events as JSON lines.
func runAudit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "audit file written by flagd -audit.file")
	brokers := fs.String("brokers", "", "or: Kafka brokers, to read the audit topic")
	topic := fs.String("topic", "lookup-audit", "audit topic")
	plan := fs.String("plan", "", "plan ID to find")
	env := &envFlags{fs: fs}
	authFlags := feed.KafkaAuthFlags(env) // as flagd's, FLAGD_KAFKA_… variables too
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := env.err(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit: unexpected argument %q (one plan at a time: -plan PLAN_ID)", fs.Arg(0))
	}
	if *plan == "" || (*file == "") == (*brokers == "") {
		return errors.New("give -plan PLAN_ID and one of -file AUDIT.jsonl or -brokers B")
	}
	var events []alert.AuditEvent
	var err error
	if *file != "" {
		f, ferr := os.Open(*file)
		if ferr != nil {
			return ferr
		}
		defer f.Close()
		events, err = alert.Search(f, *plan)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		auth, aerr := authFlags().Build()
		if aerr != nil {
			return aerr
		}
		events, err = searchTopic(ctx, strings.Split(*brokers, ","), auth, *topic, *plan)
	}
	enc := json.NewEncoder(stdout)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return err
		}
	}
	return err
}

// searchTopic reads every partition of the audit topic up to its end now.
func searchTopic(ctx context.Context, brokers []string, auth feed.KafkaAuth, topic, plan string) ([]alert.AuditEvent, error) {
	cl := auth.Client(brokers, 0)
	var md *kafka.MetadataResponse
	var err error
	for attempt := 0; ; attempt++ {
		md, err = cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil {
			break
		}
		if err == nil && len(md.Topics) == 1 {
			err = md.Topics[0].Error
		}
		if attempt == 4 {
			return nil, fmt.Errorf("audit topic %s: %v", topic, err)
		}
		time.Sleep(500 * time.Millisecond) // leader elections settle after a restart
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	offs, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, err
	}
	var out []alert.AuditEvent
	for _, po := range offs.Topics[topic] {
		if po.FirstOffset >= po.LastOffset {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond, Dialer: auth.Dialer()})
		if err := r.SetOffset(po.FirstOffset); err != nil {
			r.Close()
			return out, err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return out, err
			}
			found, err := alert.Search(strings.NewReader(string(m.Value)), plan)
			if err != nil {
				r.Close()
				return out, fmt.Errorf("partition %d offset %d: %w", po.Partition, m.Offset, err)
			}
			out = append(out, found...)
			if m.Offset+1 >= po.LastOffset {
				break
			}
		}
		r.Close()
	}
	return out, nil
}

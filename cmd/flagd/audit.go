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

// auditUsage is flagd audit's help text, before its flags.
const auditUsage = `Usage: flagd audit -plan PLAN_ID (-file AUDIT.jsonl | -brokers B [-topic T])

Prints, one JSON line each, the audit events of the lookups that returned
the plan: who asked, when, which fields they gave, what was returned.

A record that is not an audit event (a line a full disk cut short, a
damaged message) does not stop the search: it is skipped, the events in
the rest are printed, and at the end a message on standard error says how
many were skipped and where (line numbers in the file; partition and offset
in the topic), never what they hold.

Exit status: 0 when every record was read; 1 when the search failed, or
when it finished but skipped unreadable records (the events printed may
then not be all of them).

`

// runAudit answers "who looked up plan X, and when" from the audit trail,
// a file (-file) or the Kafka topic (-brokers, -topic), printing the
// matching events as JSON lines. Records that cannot be read are skipped
// and reported, by position only, in the error it returns after printing
// the events found (flagd then exits 1).
func runAudit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), auditUsage)
		fs.PrintDefaults()
	}
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
		var skipped *alert.UnreadableError
		if errors.As(err, &skipped) {
			err = fmt.Errorf("%s: %w: the events printed are those of the lines read", *file, err)
		}
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
// A message that is not an audit event is skipped; those skipped are
// reported, by partition and offset, in the error returned with the events
// found.
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
	var bad unreadableMessages
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
			if e, err := alert.DecodeAuditEvent(m.Value); err != nil {
				bad.add(m.Partition, m.Offset)
			} else if e.Returned(plan) {
				out = append(out, e)
			}
			if m.Offset+1 >= po.LastOffset {
				break
			}
		}
		r.Close()
	}
	if bad.count > 0 {
		return out, fmt.Errorf("audit topic %s: %s: the events printed are those of the messages read", topic, &bad)
	}
	return out, nil
}

// unreadableMessages counts the audit topic's messages that are not audit
// events and keeps the positions of the first 100.
type unreadableMessages struct {
	count int
	at    []string // "partition P offset O"
}

func (u *unreadableMessages) add(partition int, offset int64) {
	u.count++
	if len(u.at) < 100 {
		u.at = append(u.at, fmt.Sprintf("partition %d offset %d", partition, offset))
	}
}

func (u *unreadableMessages) String() string {
	s := fmt.Sprintf("%d unreadable audit message", u.count)
	if u.count != 1 {
		s += "s"
	}
	s += " skipped (" + strings.Join(u.at, ", ")
	if u.count > len(u.at) {
		s += fmt.Sprintf(" and %d more", u.count-len(u.at))
	}
	return s + ")"
}

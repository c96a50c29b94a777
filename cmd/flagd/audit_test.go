package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

// auditLine is an audit event, as flagd writes it, of a lookup that
// returned plan.
func auditLine(requestID, plan string) string {
	return `{"request_id":"` + requestID + `","client_id":"las-cad","time":"2026-12-01T10:00:00Z",` +
		`"fields_supplied":["nhs_number"],"tier":"match","plan_ids":["` + plan + `"]}`
}

// flagd audit -file goes on past a line it cannot read (half a line a
// full disk left): it prints the events before and after it, then fails
// with a message that gives how many lines it skipped and their numbers,
// never what they hold, so an operator knows the list may be incomplete.
func TestAuditCommandSkipsUnreadableLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	file := strings.Join([]string{
		auditLine("r1", "UCP-9"),
		`{"request_id":"r2","client_id":"fragment-las-cad","time":"2026-12-01T10:00:00Z","fields_supp`,
		auditLine("r3", "UCP-1"),
		auditLine("r4", "UCP-9"),
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	err := run([]string{"audit", "-file", path, "-plan", "UCP-9"}, &out, &errs)
	if got := out.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, `"request_id":"r1"`) || !strings.Contains(got, `"request_id":"r4"`) {
		t.Errorf("printed:\n%s\nwant the events r1 and r4 (error %v)", got, err)
	}
	if err == nil || !strings.Contains(err.Error(), path+": 1 unreadable audit line skipped (line 2)") {
		t.Errorf("error %v; want the unreadable line reported by number", err)
	} else if strings.Contains(err.Error()+errs.String(), "fragment") {
		t.Errorf("the report quotes the line: %v %s", err, errs.String())
	}
}

// flagd audit -h says what happens to unreadable records and what the
// exit status is then.
func TestAuditCommandHelp(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run([]string{"audit", "-h"}, &out, &errs); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("flagd audit -h: %v", err)
	}
	for _, want := range []string{"-plan", "unreadable records", "Exit status: 0 when every record was read; 1"} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("help text lacks %q:\n%s", want, errs.String())
		}
	}
}

// flagd audit -brokers goes on past a message of the audit topic that is
// not an audit event: it prints the events before and after it, then fails
// with a message giving the skipped message's partition and offset, never
// its content. Needs Kafka.
func TestAuditCommandSkipsUnreadableMessages(t *testing.T) {
	brokers := feedtest.Brokers(t)
	topic := feedtest.Name("flagd-audit")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := feed.CreateTopic(ctx, brokers, feed.KafkaAuth{}, topic, 1, false); err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	err := w.WriteMessages(ctx,
		kafka.Message{Key: []byte("las-cad"), Value: []byte(auditLine("r1", "UCP-9"))},
		kafka.Message{Key: []byte("las-cad"), Value: []byte(`{"request_id":"r2","client_id":"fragment-las`)},
		kafka.Message{Key: []byte("las-cad"), Value: []byte(auditLine("r3", "UCP-1"))},
		kafka.Message{Key: []byte("las-cad"), Value: []byte(auditLine("r4", "UCP-9"))})
	if err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	err = run([]string{"audit", "-brokers", strings.Join(brokers, ","), "-topic", topic, "-plan", "UCP-9"}, &out, &errs)
	if got := out.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, `"request_id":"r1"`) || !strings.Contains(got, `"request_id":"r4"`) {
		t.Errorf("printed:\n%s\nwant the events r1 and r4 (error %v)", got, err)
	}
	if err == nil || !strings.Contains(err.Error(), "1 unreadable audit message skipped (partition 0 offset 1)") {
		t.Errorf("error %v; want the unreadable message reported by partition and offset", err)
	} else if strings.Contains(err.Error()+errs.String(), "fragment") {
		t.Errorf("the report quotes the message: %v %s", err, errs.String())
	}
}

package feed

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// stuckBroker accepts connections and never answers, as a broker that has
// hung does; stop closes it and its connections, so writes then fail.
func stuckBroker(t *testing.T) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}
}

// TestDeadLettersDoNotHoldUpApplies: copying refused events happens on a
// goroutine of its own, so a dead-letter topic that does not answer never
// holds up the apply loop (and the withdrawals in its batches); a queue
// full of waiting copies drops the next batch's copies and counts them.
func TestDeadLettersDoNotHoldUpApplies(t *testing.T) {
	addr, stop := stuckBroker(t)
	m := NewMetrics(prometheus.NewRegistry())
	c := NewConsumer(KafkaConfig{Brokers: []string{addr}, Metrics: m}, nil, nil)
	d := c.startDeadLetters()
	bad := &DeadLetterError{Reason: "missing type"}
	start := time.Now()
	for b := range deadLetterQueue + 2 {
		for i := range 3 {
			d.add(&kafka.Message{Partition: 0, Offset: int64(3*b + i), Key: []byte("k"), Value: []byte("{}")}, bad)
		}
		d.flush()
		for b == 0 && len(d.queue) > 0 { // the writer takes the first batch and is stuck on it
			time.Sleep(time.Millisecond)
		}
	}
	// The writer holds one batch and the queue the next deadLetterQueue;
	// the last batch found the queue full. A write to the stuck broker
	// waits seconds, so an apply loop that waited on it would be here long
	// after this.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("handing over %d batches took %v: the apply loop waited on the dead-letter topic", deadLetterQueue+2, took)
	}
	if got := testutil.ToFloat64(m.DeadLetterWriteErrors); got != 3 {
		t.Errorf("dead letters dropped at a full queue: %v, want 3 (the last batch)", got)
	}
	stop()
	d.close() // the broker is gone: every queued write fails, and close returns
	if got := testutil.ToFloat64(m.DeadLetterWriteErrors); got != 3*(deadLetterQueue+2) {
		t.Errorf("dead letters counted as not written: %v, want all %d", got, 3*(deadLetterQueue+2))
	}
}

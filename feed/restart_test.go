package feed_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

type pair struct {
	plan    string
	version uint64
}

// pairs records every change the consumer applied, to find lost or doubled
// effects.
type pairs struct {
	mu      sync.Mutex
	applied map[pair]int
}

func (p *pairs) Record(changes []feed.Applied, _ feed.Offsets) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range changes {
		p.applied[pair{c.PlanID, c.Version}]++
	}
}

// TestKafkaBrokerRestart restarts the broker while events stream in: every
// published version is applied exactly once, and the index ends at the
// last version of every plan.
func TestKafkaBrokerRestart(t *testing.T) {
	e := newTopic(t, 3)
	ix := matcher.NewIndex(nil)
	rec := &pairs{applied: map[pair]int{}}
	c := e.follow(ix, rec, nil)

	const plans, versions = 100, 30
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	published := make(chan error, 1)
	go func() {
		// One version of every plan per round, ~100 rounds/s; a failed
		// write (the broker is away) is retried until it lands, so the
		// topic may hold duplicates but never loses or reorders a version.
		for v := uint64(1); v <= versions; v++ {
			msgs := make([]kafka.Message, plans)
			for i := range plans {
				msgs[i] = msg(i, feedtest.Upsert(i, v))
			}
			for {
				err := e.w.WriteMessages(ctx, msgs...)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					published <- err
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
		}
		published <- nil
	}()
	time.Sleep(800 * time.Millisecond)
	feedtest.Services(t, ctx, "restart-kafka")
	if err := <-published; err != nil {
		t.Fatalf("publishing: %v", err)
	}
	e.waitApplied(c)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := range plans {
		for v := uint64(1); v <= versions; v++ {
			if n := rec.applied[pair{feedtest.PlanID(i), v}]; n != 1 {
				t.Fatalf("plan %d version %d applied %d times, want once", i, v, n)
			}
		}
		if got, live := ix.Version(feedtest.PlanID(i)); got != versions || !live {
			t.Fatalf("plan %d ends at version %d (live %v), want %d", i, got, live, versions)
		}
	}
}

package feed_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/feed"
)

// TestDecodeMatchesEncodingJSON: the fastjson decoder reads every event of
// a synthetic plan store exactly as encoding/json does.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Plans, cfg.Queries = 3000, 0
	ds, err := bench.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ds.Events {
		b, err := json.Marshal(&ds.Events[i])
		if err != nil {
			t.Fatal(err)
		}
		var want feed.Event
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, err := feed.Decode(b)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) || !got.OccurredAt.Equal(want.OccurredAt) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

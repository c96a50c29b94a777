package matcher

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"
	"weak"
)

// TestPlanIDHeld: a plan ID that fits is held in its record's own
// allocation, and the plan map's key is that copy; a longer one is kept as
// given. Updating or withdrawing a plan leaves no earlier record reachable
// through the map's key.
func TestPlanIDHeld(t *testing.T) {
	for _, c := range []struct {
		id     string
		inline bool
	}{
		{"UCP-123", true},
		{strings.Repeat("x", 24), true},
		{"6f1c2a9e-3b7d-4c1e-9a55-0d2e8b7f4a10", true}, // a UUID: 36 bytes
		{strings.Repeat("y", 41), false},
	} {
		ix := NewIndex(nil)
		ix.Upsert(strings.Clone(c.id), 1, margaret())
		p := ix.slots.get(ix.planSlots[c.id]).Load()
		if p.planID != c.id {
			t.Fatalf("record of %q holds plan ID %q", c.id, p.planID)
		}
		start, at := uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(unsafe.StringData(p.planID)))
		if held := at > start && at < start+unsafe.Sizeof(*p)+40; held != c.inline {
			t.Errorf("plan ID of %d bytes: held with its record %v, want %v", len(c.id), held, c.inline)
		}
		for k := range ix.planSlots {
			if unsafe.StringData(k) != unsafe.StringData(p.planID) {
				t.Errorf("plan ID of %d bytes: the plan map's key is a second copy", len(c.id))
			}
		}

		// An update, then a withdrawal: each earlier record must become
		// garbage, though the map keeps the plan's key for ever.
		first := weak.Make(p)
		ix.Upsert(strings.Clone(c.id), 2, margaret())
		second := weak.Make(ix.slots.get(ix.planSlots[c.id]).Load())
		ix.Withdraw(strings.Clone(c.id), 3)
		runtime.GC()
		if first.Value() != nil || second.Value() != nil {
			t.Errorf("plan ID of %d bytes: a replaced or withdrawn record is still reachable (first %v, second %v)",
				len(c.id), first.Value() != nil, second.Value() != nil)
		}
		if v, live := ix.Version(c.id); v != 3 || live {
			t.Errorf("plan ID of %d bytes: after withdrawal version %d live %v, want 3 false", len(c.id), v, live)
		}
	}
}

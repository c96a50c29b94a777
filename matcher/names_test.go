package matcher

import (
	"strings"
	"testing"
	"unsafe"
)

// TestNameInline: a name that fits is held in its nameInfo, a copy the
// caller's buffer cannot change; a longer one is kept whole.
func TestNameInline(t *testing.T) {
	nt := newNameTable()
	buf := []byte("margaret")
	short := nt.intern(unsafe.String(&buf[0], len(buf)))
	copy(buf, "xxxxxxxx") // the caller reuses its buffer
	fits := strings.Repeat("a", nameInline)
	long := strings.Repeat("b", nameInline+1)
	fitsID, longID := nt.intern(fits), nt.intern(long)
	if nt.intern("margaret") != short {
		t.Fatal("interning a name twice gave two IDs")
	}
	for _, c := range []struct {
		id     nameID
		want   string
		inline bool
	}{{short, "margaret", true}, {fitsID, fits, true}, {longID, long, false}} {
		ni := nt.info(c.id)
		if ni.s != c.want {
			t.Errorf("name %d reads %q, want %q", c.id, ni.s, c.want)
		}
		if got := unsafe.StringData(ni.s) == &ni.inline[0]; got != c.inline {
			t.Errorf("name of %d bytes: held inline %v, want %v", len(c.want), got, c.inline)
		}
		if ni.sdx != SoundexOf(c.want) {
			t.Errorf("name %d: Soundex %v, want %v", c.id, ni.sdx, SoundexOf(c.want))
		}
	}
}

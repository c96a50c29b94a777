package matcher

import (
	"sync/atomic"
	"unsafe"
)

// nameID identifies an interned normalised name; 0 means none.
type nameID uint32

// nameInfo is what the matcher needs of one distinct normalised name,
// computed once when the name is first seen. All fields but the counts are
// immutable after the name is published.
type nameInfo struct {
	s       string   // normalised, e.g. "obrien", "smith jones"
	sdx     Soundex  // of s with spaces removed
	nys     NYSIIS   // of s with spaces removed
	formals []string // nickname formal names (given names), shared with the nickname table

	// Live plan holders carrying this name, for term-frequency weights.
	givenCount  atomic.Int32
	familyCount atomic.Int32

	// inline holds the name's bytes when they fit, and s then points here:
	// the bytes sit in the cache line after the details, at an address
	// known from the name's ID alone, so a lookup loads both at once
	// rather than the details first and the bytes they point to after.
	inline [nameInline]byte
}

// nameInline is the longest name held in its nameInfo: the details take one
// cache line and the bytes the next.
const nameInline = 64

const (
	nameChunkBits = 12
	nameChunkSize = 1 << nameChunkBits
)

// nameTable interns names. Only the index writer calls intern; readers call
// info with IDs they found in published records, which happens-after the
// name's publication.
type nameTable struct {
	ids    map[string]nameID // writer only
	chunks atomic.Pointer[[]*[nameChunkSize]nameInfo]
	n      uint32 // names interned, including the reserved 0; writer only
}

func newNameTable() *nameTable {
	t := &nameTable{ids: make(map[string]nameID), n: 1}
	dir := []*[nameChunkSize]nameInfo{new([nameChunkSize]nameInfo)}
	t.chunks.Store(&dir)
	return t
}

// intern returns the ID of the normalised name s, adding it if new. s must
// not be empty. Writer only.
func (t *nameTable) intern(s string) nameID {
	if id, ok := t.ids[s]; ok {
		return id
	}
	id := nameID(t.n)
	dir := *t.chunks.Load()
	if int(id>>nameChunkBits) == len(dir) {
		grown := append(dir[:len(dir):len(dir)], new([nameChunkSize]nameInfo))
		t.chunks.Store(&grown)
		dir = grown
	}
	ni := &dir[id>>nameChunkBits][id&(nameChunkSize-1)]
	if len(s) <= nameInline {
		n := copy(ni.inline[:], s)
		ni.s = unsafe.String(&ni.inline[0], n)
	} else {
		ni.s = s
	}
	var buf [64]byte
	compact := appendNoSpaces(buf[:0], s)
	ni.sdx = SoundexOf(string(compact))
	ni.nys = NYSIISOf(string(compact))
	ni.formals = formalsOf(s)
	t.ids[ni.s] = id // the key shares the held bytes
	t.n++
	return id
}

// touch reads a name's details and its inline bytes, two cache lines whose
// loads do not wait for each other (see rank); the sum means nothing.
func (t *nameTable) touch(id nameID) uint64 {
	ni := t.info(id)
	return uint64(len(ni.s)) + uint64(ni.inline[0])
}

// info returns the name's details; safe for readers.
func (t *nameTable) info(id nameID) *nameInfo {
	dir := *t.chunks.Load()
	return &dir[id>>nameChunkBits][id&(nameChunkSize-1)]
}

func appendNoSpaces(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			dst = append(dst, s[i])
		}
	}
	return dst
}

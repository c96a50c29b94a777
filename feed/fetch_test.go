package feed

import "testing"

// batchEnds reads only the response layouts it knows (Fetch v4–v11): for
// any other it gives nothing, and the reader keeps to the records it sees.
func TestBatchEndsKnownVersionsOnly(t *testing.T) {
	// A v11 response: correlation ID, throttle, error, session; one topic
	// "t", one partition with one v2 batch of base offset 5 and last offset
	// delta 3 (the batch's records are not read).
	var b []byte
	be32 := func(v uint32) { b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
	be64 := func(v uint64) { be32(uint32(v >> 32)); be32(uint32(v)) }
	be32(1)             // correlation ID
	be32(0)             // throttle
	b = append(b, 0, 0) // error code
	be32(0)             // session ID
	be32(1)             // topics
	b = append(b, 0, 1, 't')
	be32(1) // partitions
	be32(0)
	b = append(b, 0, 0) // partition, error code
	be64(9)             // high-water mark
	be64(9)             // last stable offset
	be64(0)             // log start offset
	be32(0)             // aborted transactions
	be32(0xffffffff)    // preferred read replica
	batch := make([]byte, 61)
	batch[7] = 5        // base offset
	batch[11] = 61 - 12 // length
	batch[16] = 2       // magic
	batch[26] = 3       // last offset delta
	be32(uint32(len(batch)))
	b = append(b, batch...)
	if got := batchEnds(b, 11); got[5] != 8 || len(got) != 1 {
		t.Errorf("v11: %v, want map[5:8]", got)
	}
	if got := batchEnds(b, 12); got != nil {
		t.Errorf("v12: %v, want nothing", got)
	}
}

// Package feed keeps the matcher's index in step with the plan store.
//
// It owns the plan-store event contract (DESIGN.md): decoding and validating
// events, applying them to the index in batches with the per-plan version
// rule, and the sources events come from (a JSON-lines file here; Kafka and
// the Redis warm start build on the same decoding). A malformed event is a
// dead letter: counted, reported by position and reason — never by content,
// which may carry personal data — and consumption goes on.
//
// feed knows nothing of HTTP.
package feed

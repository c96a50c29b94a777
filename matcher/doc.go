// Package matcher decides whether a caller's imperfect details belong to an
// urgent care plan holder.
//
// It owns the patient model, the normalisation of names, dates, postcodes,
// phones and NHS numbers, phonetic codes, nicknames, the blocking index, the
// Fellegi–Sunter scoring with term-frequency adjustment, the tiers (match,
// possible, none) with their safety rules, and the explanation of each
// candidate as agreement levels per field.
//
// It does no I/O: feeding the index (Kafka, files, Redis) belongs to package
// feed, and serving lookups to package alert. Reference tables (nicknames,
// street types, titles) are embedded; their sources and licences are in
// data/NOTICE.
//
// Concurrency: an Index takes one writer at a time (Upsert, Withdraw) and any
// number of concurrent readers (Match). Readers never take a lock: they read
// immutable postings published with atomic pointers, and a withdrawn plan is
// unlinked by one atomic store, so it vanishes from every lookup at once.
package matcher

package feed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/planflag/planflag/matcher"
)

// A snapshot in Redis lets a replica start warm: it loads the plans the
// snapshot holds and reads Kafka on from the offsets the snapshot reflects,
// instead of replaying the whole topic.
//
// Layout, all under one hash tag so a Redis Cluster keeps it in one slot:
//
//	{planflag:<topic>}:meta                 hash: gen (the current generation), topic,
//	                                        head_at, written_at (unix seconds)
//	{planflag:<topic>}:<gen>:b000 … :b255   hash: plan ID → entry
//	{planflag:<topic>}:<gen>:offsets        hash: partition → next offset
//	{planflag:<topic>}:<gen>:alive          the generation's data is there
//
// An entry is the plan's version as 20 zero-padded digits, then 'u' and the
// event as published, or 'w' for a withdrawn plan: a withdrawal erases the
// identifiers and keeps only the version, so that a late copy of an older
// event cannot bring the plan back after a warm start.
//
// Consistency. A generation is written by replicas whose every change since
// their state began went into it: the replica that started it (replaying
// the topic from its start) and replicas that started warm from it. Every
// write goes through one Lua script that replaces an entry only with a
// higher version and moves an offset only forward, and offsets are written
// after (or with) the entries they cover; so a generation's entries are
// never older than its offsets say, however many of its writers write and
// whatever crashes between writes, and replaying from its offsets with
// version checks gives the topic's state.
//
// What would break that is a writer whose earlier writes are not in the
// generation, and the script refuses those: a replica whose generation is
// no longer the current one, and a replica whose generation's data has gone
// (Redis restarted empty or evicted it: the alive key is missing). Such a
// replica stops writing — it cannot rewrite everything it holds — and the
// snapshot is renewed by the next replica that replays the topic. A replica
// that replays the topic (no snapshot, or one it could not use) writes a
// generation of its own and makes it current at its first complete write
// if there is none, or if the current one is the one it found unusable,
// then deletes the one it replaced; otherwise it leaves the current one to
// its writers and stops.
//
// Age. head_at is a time at which the log's high-water marks were at or
// below the snapshot's offsets (HeadRecorder: the consumer reports it while
// at the head, idle or not), so every event after the offsets was written
// after it. A snapshot whose head_at is older than MaxAge (kept below the
// topic's delete.retention.ms, so no tombstone after the offsets can have
// been compacted away), or whose offsets fall outside the log, is not used:
// the replica replays the topic.

const snapshotBuckets = 256

// bucketMark is the field every bucket of a generation has (plan IDs are
// never empty).
const bucketMark = ""

// writeScript applies entries monotonically, then offsets and meta, for a
// writer of one generation. The first write of a replica that started the
// generation marks every bucket (a field "", never a plan ID), so that a
// bucket lost from Redis (evicted) is told from one that had no plans.
// KEYS: meta, alive, offsets, then the bucket keys the call touches (on
// that first write: all of them, in order).
// ARGV: gen, first (1: no write of this writer has landed yet), claim (1:
// may make gen current), displace (the generation it may replace, or ""),
// n, then n × (key index, plan ID, entry), then m, m × (partition, offset),
// then written_at, head_at and topic if m > 0.
// Returns {status, previous generation}: status "ok", "claimed" (gen is
// current now) or "lost" (nothing written: gen is not current, or its data
// is gone).
var writeScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'gen')
if ARGV[2] == '0' and redis.call('EXISTS', KEYS[2]) == 0 then
  return {'lost', cur or ''}
end
local mine = (cur == ARGV[1])
if not mine and not (ARGV[3] == '1' and ((not cur) or cur == ARGV[4])) then
  return {'lost', cur or ''}
end
redis.call('SET', KEYS[2], '1')
if ARGV[2] == '1' and ARGV[3] == '1' then
  for k = 4, #KEYS do
    redis.call('HSET', KEYS[k], '', ARGV[1])
  end
end
local n = tonumber(ARGV[5])
local i = 6
for _ = 1, n do
  local key = KEYS[tonumber(ARGV[i])]
  local e = redis.call('HGET', key, ARGV[i+1])
  if (not e) or string.sub(e, 1, 20) < string.sub(ARGV[i+2], 1, 20) then
    redis.call('HSET', key, ARGV[i+1], ARGV[i+2])
  end
  i = i + 3
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  local o = tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '-1')
  if tonumber(ARGV[i+1]) > o then
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i+1])
  end
  i = i + 2
end
if m == 0 then
  return {'ok', cur or ''}
end
local head = tonumber(ARGV[i+1])
if mine then
  head = math.max(head, tonumber(redis.call('HGET', KEYS[1], 'head_at') or '0'))
end
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'written_at', ARGV[i], 'head_at', head, 'topic', ARGV[i+2])
if mine then
  return {'ok', cur}
end
return {'claimed', cur or ''}
`)

// SnapshotConfig configures Snapshots.
type SnapshotConfig struct {
	Addr     string        // Redis address, host:port
	Redis    RedisAuth     // TLS and credentials (the zero value: plaintext, no AUTH)
	Topic    string        // the plan-store topic the snapshot reflects
	Interval time.Duration // between writes (default 30s)
	// MaxAge: a snapshot whose offsets were last at the log's head longer
	// ago is not used at start (default 12h; keep it below the topic's
	// delete.retention.ms, 24h by default).
	MaxAge  time.Duration
	Log     *slog.Logger
	Metrics *Metrics // may be nil
	Now     func() time.Time
}

// Snapshots keeps the Redis snapshot: it collects what the consumer applies
// (Record) and writes it every Interval and on Close. While Redis is away
// lookups are unaffected; changes accumulate (one entry per plan, so never
// more than the store) and writes are retried.
type Snapshots struct {
	cfg SnapshotConfig
	rdb *redis.Client

	metaKey string

	mu      sync.Mutex
	pending map[string]entry
	offsets Offsets
	headAt  time.Time // RecordHead: the log's head was at or below offsets then
	// The generation this replica writes (see the consistency note above).
	gen      string
	written  bool   // a write to gen has landed (or gen was loaded)
	claim    bool   // gen is this replica's own, from a replay: it may make it current
	displace string // the generation it found unusable and may replace
	stopped  bool   // gen is no longer current or its data is gone: no more writes
}

type entry struct {
	version uint64
	event   []byte // nil: withdrawn
}

// NewSnapshots returns a snapshot keeper for the Redis at cfg.Addr. It does
// not connect until used.
func NewSnapshots(cfg SnapshotConfig) *Snapshots {
	quietRedis.Do(func() { redis.SetLogger(redisLogger{}) })
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := cfg.Redis.Options(cfg.Addr)
	// A snapshot is written in large pipelines: more time for each.
	opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = 10*time.Second, 10*time.Second, 1
	s := &Snapshots{cfg: cfg, pending: make(map[string]entry), rdb: redis.NewClient(opts)}
	s.metaKey = s.tag() + ":meta"
	s.cold("")
	return s
}

func (s *Snapshots) tag() string { return "{planflag:" + s.cfg.Topic + "}" }

// genKeys returns generation gen's bucket keys, offsets key and alive key.
func (s *Snapshots) genKeys(gen string) (buckets [snapshotBuckets]string, offsets, alive string) {
	return keysUnder(s.tag() + ":" + gen)
}

// keysUnder returns the bucket, offsets and alive keys under prefix: a
// generation's, or (the topic's tag alone) a snapshot written before
// generations.
func keysUnder(prefix string) (buckets [snapshotBuckets]string, offsets, alive string) {
	for i := range buckets {
		buckets[i] = fmt.Sprintf("%s:b%03d", prefix, i)
	}
	return buckets, prefix + ":offsets", prefix + ":alive"
}

// use makes gen the generation this replica writes.
func (s *Snapshots) use(gen string, written, claim bool, displace string) {
	s.gen, s.written, s.claim, s.displace = gen, written, claim, displace
}

// cold makes this replica the writer of a new generation of its own, as
// one that replays the topic; displace is the generation it found unusable.
func (s *Snapshots) cold(displace string) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	s.use(hex.EncodeToString(b[:]), false, true, displace)
}

// quietRedis routes go-redis's own log lines (connection retries, which
// name addresses only) to slog at debug level instead of standard error.
var quietRedis sync.Once

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

func bucketOf(planID string) int {
	h := fnv.New32a()
	h.Write([]byte(planID))
	return int(h.Sum32() % snapshotBuckets)
}

// SnapshotStats describes a snapshot load.
type SnapshotStats struct {
	Entries     int // plans read (live and withdrawn)
	Live        int
	Withdrawn   int
	DeadLetters int // entries that did not decode (skipped; replay will not fix them)
	Seconds     float64
}

// ErrNoSnapshot means there was no usable snapshot: replay the topic.
var ErrNoSnapshot = errors.New("no usable snapshot")

// Load reads the snapshot into ix and returns the offsets to read Kafka on
// from. usable checks those offsets against the topic (Consumer.Usable). If
// the snapshot is missing, too old or unusable the error wraps ErrNoSnapshot
// and only its withdrawals were applied (below); any other error means
// Redis could not be read. Either way the caller replays the topic from the
// start, and the next write replaces the stored snapshot.
//
// The withdrawals of a snapshot that is not used are applied nonetheless,
// and written into the generation that replaces it: once the topic's log
// cleaner has let a withdrawal go (a late copy of an older upsert of the
// plan published after it is the plan's last record, and compaction keeps
// the last by offset, not the highest version), the snapshot's 'w' entry is
// the only record that the plan was withdrawn, and a replay alone would
// flag the plan again. Applying one is always safe: it only holds back
// versions of the plan at or below its own, and a plan consented to again
// comes with a higher one. If they cannot all be read, this replica does
// not replace the snapshot.
func (s *Snapshots) Load(ctx context.Context, ix Applier, usable func(Offsets) error) (Offsets, SnapshotStats, error) {
	start := time.Now()
	s.warnEviction(ctx)
	var st SnapshotStats
	gen, offsets, err := s.meta(ctx, usable)
	if err != nil {
		// Replay, and write a generation of our own: it may replace the
		// one found unusable (but not one that could not be read).
		displace := gen
		if !errors.Is(err, ErrNoSnapshot) {
			displace = ""
		}
		if displace != "" {
			var ferr error
			if st, ferr = s.read(ctx, gen, ix, true); ferr != nil {
				s.cfg.Log.Warn("withdrawals of the unused snapshot not all read; it will not be replaced",
					"err", ferr.Error(), "withdrawn_read", st.Withdrawn)
				displace = ""
			}
			st.Seconds = time.Since(start).Seconds()
		}
		s.mu.Lock()
		s.cold(displace)
		s.mu.Unlock()
		return nil, st, err
	}
	st, err = s.read(ctx, gen, ix, false)
	if err != nil {
		// Part of the snapshot was applied: the caller starts again from
		// an empty index and replays the topic.
		s.mu.Lock()
		s.cold("")
		s.mu.Unlock()
		return nil, st, err
	}
	s.mu.Lock()
	s.use(gen, true, false, "")
	s.mu.Unlock()
	st.Seconds = time.Since(start).Seconds()
	if m := s.cfg.Metrics; m != nil {
		m.SnapshotLoaded.Set(float64(st.Entries))
	}
	return offsets, st, nil
}

// KeepWithdrawals applies to ix the withdrawals of the current snapshot
// generation, as many as can be read, when Load failed for want of Redis
// (an error that is not ErrNoSnapshot: Redis erring in the meta or part way
// through the read). The caller replays the topic into ix, started again
// empty: as with a snapshot not used (Load), a replay alone may flag a plan
// whose withdrawal only the snapshot still holds. The withdrawals read are
// also written into this replica's own generation. It returns the first
// error met; the withdrawals read before and after it are applied.
func (s *Snapshots) KeepWithdrawals(ctx context.Context, ix Applier) (SnapshotStats, error) {
	var all SnapshotStats
	read := map[string]bool{}
	// A generation replaced while it is read loses its buckets to the one
	// that replaced it: read that one too.
	for len(read) < 3 {
		meta, err := s.rdb.HGetAll(ctx, s.metaKey).Result()
		switch {
		case err != nil:
			return all, fmt.Errorf("read snapshot meta: %w", err)
		case meta["gen"] == "" || meta["topic"] != s.cfg.Topic || read[meta["gen"]]:
			return all, nil // none, none of this topic's, or read already
		}
		read[meta["gen"]] = true
		st, err := s.read(ctx, meta["gen"], ix, true)
		all.Entries += st.Entries
		all.Withdrawn += st.Withdrawn
		all.DeadLetters += st.DeadLetters
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// FitRetention lowers MaxAge to half the topic's delete.retention.ms
// (Consumer.DeleteRetention) unless it is that or less already: a warm
// start reads the log on from the snapshot's offsets, and a tombstone
// written after them must still be in the log, which keeps one for
// delete.retention.ms once the cleaner could remove it (the half is the
// margin of the defaults, 12h against 24h). It returns the MaxAge in use
// and whether it was lowered. Call it before Load.
func (s *Snapshots) FitRetention(retention time.Duration) (time.Duration, bool) {
	if limit := retention / 2; s.cfg.MaxAge > limit {
		s.cfg.MaxAge = limit
		return limit, true
	}
	return s.cfg.MaxAge, false
}

// warnEviction logs a warning if Redis may evict keys of any kind when
// full, the snapshot's among them: warm starts then find the snapshot
// incomplete and replay the topic. (CONFIG may be refused, as managed
// Redis services do: then nothing is said.)
func (s *Snapshots) warnEviction(ctx context.Context) {
	v, err := s.rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if p := v["maxmemory-policy"]; err == nil && strings.HasPrefix(p, "allkeys-") {
		s.cfg.Log.Warn("Redis may evict the snapshot's keys when full; a warm start then finds the snapshot incomplete and replays the topic: give planflag's Redis noeviction or a volatile-… policy",
			"maxmemory_policy", p)
	}
}

// read applies generation gen's entries to ix: all of them, or with
// withdrawnOnly its withdrawals alone, which it also keeps to be written
// into this replica's own generation. It fails if the generation is not
// current with its data once read (replaced or lost meanwhile), except
// for withdrawnOnly, which takes whatever is there.
func (s *Snapshots) read(ctx context.Context, gen string, ix Applier, withdrawnOnly bool) (SnapshotStats, error) {
	var st SnapshotStats
	keys, _, aliveKey := s.genKeys(gen)
	// Read the buckets pipelined, a group at a time, decode them on every
	// core and apply in batches on this goroutine.
	type decoded struct {
		changes []matcher.Change
		st      SnapshotStats
	}
	groups := make(chan []string)
	results := make(chan decoded, 4)
	errc := make(chan error, 1)
	go func() {
		defer close(groups)
		const group = 16
		for i := 0; i < snapshotBuckets; i += group {
			select {
			case groups <- keys[i:min(i+group, snapshotBuckets)]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var failed atomic.Bool // after an error the groups left are taken and not read
	fail := func(err error) {
		failed.Store(true)
		select {
		case errc <- err:
		default:
		}
	}
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for keys := range groups {
				if failed.Load() && !withdrawnOnly {
					continue
				}
				pipe := s.rdb.Pipeline()
				cmds := make([]*redis.MapStringStringCmd, len(keys))
				for i, k := range keys {
					cmds[i] = pipe.HGetAll(ctx, k)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					fail(fmt.Errorf("read snapshot: %w", err))
					if !withdrawnOnly {
						continue
					}
					// Withdrawals: keep those of the buckets that were
					// read (below, each command's own error checked).
				}
				var d decoded
				for _, c := range cmds {
					if c.Err() != nil {
						continue
					}
					if _, marked := c.Val()[bucketMark]; !marked && !withdrawnOnly {
						fail(errors.New("read snapshot: a bucket is gone from Redis (evicted?)"))
						break
					}
					for plan, v := range c.Val() {
						if plan == bucketMark || withdrawnOnly && (len(v) < 21 || v[20] != 'w') {
							continue
						}
						ch, ok := decodeEntry(plan, v)
						d.st.Entries++
						switch {
						case !ok:
							d.st.DeadLetters++
						case ch.Patient == nil:
							d.st.Withdrawn++
							d.changes = append(d.changes, ch)
						default:
							d.st.Live++
							d.changes = append(d.changes, ch)
						}
					}
				}
				results <- d
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	for d := range results {
		ix.Apply(d.changes)
		if withdrawnOnly {
			s.mu.Lock()
			for _, c := range d.changes {
				if cur, ok := s.pending[c.PlanID]; !ok || cur.version < c.Version {
					s.pending[c.PlanID] = entry{version: c.Version}
				}
			}
			s.mu.Unlock()
		}
		st.Entries += d.st.Entries
		st.Live += d.st.Live
		st.Withdrawn += d.st.Withdrawn
		st.DeadLetters += d.st.DeadLetters
	}
	select {
	case err := <-errc:
		s.redisUp(false)
		return st, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if withdrawnOnly {
		return st, nil
	}
	// The generation must still be current, with its data, now that it has
	// been read: a replica that replaced it deletes it after switching, so
	// a read that met deleted buckets sees the switch here.
	now, err := s.rdb.HGet(ctx, s.metaKey, "gen").Result()
	alive, err2 := s.rdb.Exists(ctx, aliveKey).Result()
	if err == nil && err2 == nil && (now != gen || alive == 0) {
		err = errors.New("snapshot replaced or lost while it was read")
	}
	if err = errors.Join(err, err2); err != nil {
		return st, fmt.Errorf("read snapshot: %w", err)
	}
	s.redisUp(true)
	return st, nil
}

// meta reads and checks the current generation's offsets and age. gen is
// the generation found, if meta could be read.
func (s *Snapshots) meta(ctx context.Context, usable func(Offsets) error) (gen string, offsets Offsets, err error) {
	meta, err := s.rdb.HGetAll(ctx, s.metaKey).Result()
	if err != nil {
		s.redisUp(false)
		return "", nil, fmt.Errorf("read snapshot meta: %w", err)
	}
	s.redisUp(true)
	gen = meta["gen"]
	discard := func(reason, format string, args ...any) (string, Offsets, error) {
		if m := s.cfg.Metrics; m != nil {
			m.SnapshotDiscards.WithLabelValues(reason).Inc()
		}
		return gen, nil, fmt.Errorf("%w: %s", ErrNoSnapshot, fmt.Sprintf(format, args...))
	}
	if len(meta) == 0 {
		return "", nil, fmt.Errorf("%w: none in Redis", ErrNoSnapshot)
	}
	if meta["topic"] != s.cfg.Topic {
		return discard("topic", "written for another topic")
	}
	if gen == "" {
		return discard("format", "written by a planflag before snapshot generations")
	}
	head, err := strconv.ParseInt(meta["head_at"], 10, 64)
	if err != nil {
		return discard("corrupt", "head_at unreadable")
	}
	if head == 0 {
		return discard("too_old", "its writers have not reached the log's head since it began")
	}
	if age := s.cfg.Now().Sub(time.Unix(head, 0)); age > s.cfg.MaxAge {
		return discard("too_old", "its offsets were last at the log's head %s ago, more than the %s allowed", age.Round(time.Second), s.cfg.MaxAge)
	}
	_, offKey, aliveKey := s.genKeys(gen)
	alive, err := s.rdb.Exists(ctx, aliveKey).Result()
	if err != nil {
		s.redisUp(false)
		return "", nil, fmt.Errorf("read snapshot: %w", err)
	}
	if alive == 0 {
		return discard("lost", "its data is gone from Redis")
	}
	// Every bucket has the generation's mark, or Redis lost (evicted)
	// some of its plans, withdrawals among them.
	bucketKeys, _, _ := s.genKeys(gen)
	pipe := s.rdb.Pipeline()
	marks := make([]*redis.BoolCmd, len(bucketKeys))
	for i, k := range bucketKeys {
		marks[i] = pipe.HExists(ctx, k, bucketMark)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.redisUp(false)
		return "", nil, fmt.Errorf("read snapshot: %w", err)
	}
	missing := 0
	for _, m := range marks {
		if !m.Val() {
			missing++
		}
	}
	switch missing {
	case 0:
	case len(marks):
		return discard("format", "written by a planflag before buckets were marked")
	default:
		return discard("lost", "%d of its %d buckets are gone from Redis (evicted?)", missing, len(marks))
	}
	raw, err := s.rdb.HGetAll(ctx, offKey).Result()
	if err != nil {
		s.redisUp(false)
		return "", nil, fmt.Errorf("read snapshot offsets: %w", err)
	}
	offsets = Offsets{}
	for p, o := range raw {
		pi, err1 := strconv.Atoi(p)
		oi, err2 := strconv.ParseInt(o, 10, 64)
		if err1 != nil || err2 != nil {
			return discard("corrupt", "offsets unreadable")
		}
		offsets[pi] = oi
	}
	if usable != nil {
		if err := usable(offsets); err != nil {
			return discard("offsets", "%v", err)
		}
	}
	return gen, offsets, nil
}

func decodeEntry(plan, v string) (matcher.Change, bool) {
	if len(v) < 21 {
		return matcher.Change{}, false
	}
	ver, err := strconv.ParseUint(v[:20], 10, 64)
	if err != nil {
		return matcher.Change{}, false
	}
	switch v[20] {
	case 'w':
		return matcher.Change{PlanID: plan, Version: ver}, true
	case 'u':
		ev, err := Decode([]byte(v[21:]))
		if err != nil || ev.PlanID != plan || ev.Version != ver || ev.Patient == nil {
			return matcher.Change{}, false
		}
		return ev.Change(), true
	}
	return matcher.Change{}, false
}

func appendEntry(b []byte, e entry) []byte {
	b = fmt.Appendf(b, "%020d", e.version)
	if e.event == nil {
		return append(b, 'w')
	}
	return append(append(b, 'u'), e.event...)
}

// Record implements Recorder: it notes what a batch changed and the offsets
// the index reflects after it.
func (s *Snapshots) Record(changes []Applied, offsets Offsets) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	for _, c := range changes {
		if cur, ok := s.pending[c.PlanID]; !ok || cur.version < c.Version {
			s.pending[c.PlanID] = entry{c.Version, c.Event}
		}
	}
	s.offsets = offsets
	n := len(s.pending)
	s.mu.Unlock()
	if m := s.cfg.Metrics; m != nil {
		m.SnapshotPending.Set(float64(n))
	}
}

// RecordHead implements HeadRecorder: the snapshot's offsets, once they
// reach offsets, were at the log's head at at.
func (s *Snapshots) RecordHead(at time.Time, offsets Offsets) {
	s.mu.Lock()
	if at.After(s.headAt) {
		s.headAt = at
	}
	s.mu.Unlock()
}

// writeChunk bounds the entries one script call carries.
const writeChunk = 2000

// Flush writes what changed since the last write, then the offsets. On
// failure the changes are kept for the next try. A replica that may no
// longer write (its generation replaced or gone) logs it once and from
// then on writes nothing.
func (s *Snapshots) Flush(ctx context.Context) error {
	s.mu.Lock()
	pending, offsets, w := s.pending, s.offsets, s.writer()
	if offsets == nil || s.stopped {
		s.mu.Unlock()
		return nil // not started (nothing the offsets could cover), or stopped
	}
	s.pending = make(map[string]entry, len(pending)/2)
	s.mu.Unlock()

	status, prev, err := s.write(ctx, pending, offsets, w)
	s.mu.Lock()
	switch {
	case err != nil:
		for k, e := range pending {
			if cur, ok := s.pending[k]; !ok || cur.version < e.version {
				s.pending[k] = e
			}
		}
	case status == "lost":
		s.stopped = true
		s.pending = nil
	case s.gen == w.gen:
		s.written = true
	}
	n := len(s.pending)
	s.mu.Unlock()
	s.redisUp(err == nil)
	m := s.cfg.Metrics
	if m != nil {
		m.SnapshotPending.Set(float64(n))
	}
	switch {
	case err != nil:
		if m != nil {
			m.SnapshotWrites.WithLabelValues("error").Inc()
		}
		return fmt.Errorf("write snapshot: %w", err)
	case status == "lost":
		why := "another replica's snapshot replaced the one this replica wrote"
		if prev == "" || prev == w.gen {
			why = "the snapshot this replica wrote is gone from Redis (restarted empty, or evicted)"
		}
		s.cfg.Log.Warn("snapshot writes stopped: "+why+"; lookups are unaffected, and the next replica that replays the topic renews the snapshot",
			"generation", w.gen)
		if m != nil {
			m.SnapshotWrites.WithLabelValues("stopped").Inc()
		}
		return nil
	case status == "claimed":
		s.cfg.Log.Info("snapshot generation started", "generation", w.gen, "replaced", prev)
		if prev != "" {
			s.drop(ctx, s.tag()+":"+prev)
		} else {
			s.drop(ctx, s.tag()) // a snapshot from before generations, if any
		}
	}
	if m != nil {
		m.SnapshotWrites.WithLabelValues("ok").Inc()
		m.SnapshotLastOK.Set(float64(s.cfg.Now().Unix()))
	}
	return nil
}

// genWriter is what a write needs of the generation it writes.
type genWriter struct {
	gen           string
	keys          [snapshotBuckets]string
	offKey, alive string
	first, claim  bool
	displace      string
	headAt        time.Time
}

func (s *Snapshots) writer() genWriter {
	keys, offKey, alive := s.genKeys(s.gen)
	return genWriter{gen: s.gen, keys: keys, offKey: offKey, alive: alive,
		first: !s.written, claim: s.claim, displace: s.displace, headAt: s.headAt}
}

// drop deletes the snapshot data under prefix: a replaced generation's, or
// one written before generations (best effort: a leftover is never read,
// only wasted).
func (s *Snapshots) drop(ctx context.Context, prefix string) {
	buckets, off, alive := keysUnder(prefix)
	if err := s.rdb.Del(ctx, append([]string{alive, off}, buckets[:]...)...).Err(); err != nil {
		s.cfg.Log.Warn("replaced snapshot not deleted", "err", err.Error())
	}
}

func (s *Snapshots) write(ctx context.Context, pending map[string]entry, offsets Offsets, w genWriter) (status, prev string, err error) {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	keys := []string{s.metaKey, w.alive, w.offKey}
	const fixedKeys = 3
	keyIndex := map[int]int{}
	if w.first && w.claim {
		// The first write marks every bucket: all go in, bucket b at
		// KEYS[fixedKeys+1+b].
		for b, k := range w.keys {
			keys = append(keys, k)
			keyIndex[b] = len(keys)
		}
	}
	args := []any{w.gen, flag(w.first), flag(w.claim), w.displace, 0}
	const fixedArgs = 5
	n := 0
	var buf []byte
	run := func(final bool) error {
		args[fixedArgs-1] = n
		if final {
			args = append(args, len(offsets))
			for p, o := range offsets {
				args = append(args, p, o)
			}
			var head int64
			if !w.headAt.IsZero() {
				head = w.headAt.Unix()
			}
			args = append(args, s.cfg.Now().Unix(), head, s.cfg.Topic)
		} else {
			args = append(args, 0)
		}
		res, err := writeScript.Run(ctx, s.rdb, keys, args...).StringSlice()
		keys, args, n = keys[:fixedKeys], args[:fixedArgs], 0
		clear(keyIndex)
		if err != nil {
			return err
		}
		if len(res) != 2 {
			return fmt.Errorf("snapshot script answered %d values", len(res))
		}
		status, prev = res[0], res[1]
		w.first = false // the alive key is set now
		return nil
	}
	for plan, e := range pending {
		b := bucketOf(plan)
		ki, ok := keyIndex[b]
		if !ok {
			keys = append(keys, w.keys[b])
			ki = len(keys) // Lua indexes from 1
			keyIndex[b] = ki
		}
		buf = appendEntry(buf[:0], e)
		args = append(args, ki, plan, string(buf))
		n++
		if n == writeChunk {
			if err := run(false); err != nil || status == "lost" {
				return status, prev, err
			}
		}
	}
	err = run(true)
	return status, prev, err
}

// Run writes the snapshot every Interval until ctx ends, logging failures
// (without data) and retrying on the next tick.
func (s *Snapshots) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Flush(ctx); err != nil {
			if !failing {
				s.cfg.Log.Warn("snapshot write failed; lookups go on, retrying every interval", "err", err.Error())
			}
			failing = true
		} else if failing {
			s.cfg.Log.Info("snapshot writes resumed")
			failing = false
		}
	}
}

// Close writes a last snapshot (within timeout) and closes the connection.
func (s *Snapshots) Close(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.Flush(ctx)
	return errors.Join(err, s.rdb.Close())
}

func (s *Snapshots) redisUp(up bool) {
	if m := s.cfg.Metrics; m != nil {
		if up {
			m.RedisUp.Set(1)
		} else {
			m.RedisUp.Set(0)
		}
	}
}

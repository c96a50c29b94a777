package feed

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
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
//	{planflag:<topic>}:b000 … :b255  hash: plan ID → entry
//	{planflag:<topic>}:offsets        hash: partition → next offset
//	{planflag:<topic>}:meta           hash: written_at (unix seconds), topic
//
// An entry is the plan's version as 20 zero-padded digits, then 'u' and the
// event as published, or 'w' for a withdrawn plan: a withdrawal erases the
// identifiers and keeps only the version, so that a late copy of an older
// event cannot bring the plan back after a warm start.
//
// Consistency: every write goes through one Lua script that replaces an
// entry only with a higher version and moves an offset only forward, and
// offsets are written after (or with) the entries they cover. So the
// entries are never older than the offsets say, whatever crashes between
// writes and however many replicas write; replaying from the offsets with
// version checks then gives exactly the topic's state. A snapshot whose
// offsets fall outside the log, or older than MaxAge (kept below the topic's
// delete.retention.ms, so no tombstone can have been compacted away since),
// is not used: the replica replays the topic and rewrites the snapshot from
// scratch.

const snapshotBuckets = 256

// writeScript applies entries monotonically, then offsets and meta.
// KEYS: offsets, meta, then the bucket keys the call touches.
// ARGV: n, then n × (key index, plan ID, entry), then m, m × (partition,
// offset), then written_at and topic if m > 0.
var writeScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local i = 2
for _ = 1, n do
  local key = KEYS[tonumber(ARGV[i])]
  local cur = redis.call('HGET', key, ARGV[i+1])
  if (not cur) or string.sub(cur, 1, 20) < string.sub(ARGV[i+2], 1, 20) then
    redis.call('HSET', key, ARGV[i+1], ARGV[i+2])
  end
  i = i + 3
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i+1]) > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
  end
  i = i + 2
end
if m > 0 then
  redis.call('HSET', KEYS[2], 'written_at', ARGV[i], 'topic', ARGV[i+1])
end
return n
`)

// SnapshotConfig configures Snapshots.
type SnapshotConfig struct {
	Addr     string        // Redis address, host:port
	Topic    string        // the plan-store topic the snapshot reflects
	Interval time.Duration // between writes (default 30s)
	// MaxAge: an older snapshot is not used at start (default 12h; keep it
	// below the topic's delete.retention.ms, 24h by default).
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

	keys    [snapshotBuckets]string
	offKey  string
	metaKey string

	mu      sync.Mutex
	pending map[string]entry
	offsets Offsets
	reset   bool // the stored snapshot is not trusted: delete it before the next write
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
	s := &Snapshots{cfg: cfg, pending: make(map[string]entry),
		rdb: redis.NewClient(&redis.Options{Addr: cfg.Addr, DialTimeout: 2 * time.Second,
			ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxRetries: 1,
			DisableIdentity: true})}
	tag := "{planflag:" + cfg.Topic + "}"
	for i := range s.keys {
		s.keys[i] = fmt.Sprintf("%s:b%03d", tag, i)
	}
	s.offKey, s.metaKey = tag+":offsets", tag+":meta"
	return s
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
// and nothing was applied; any other error means Redis could not be read.
// Either way the caller replays the topic from the start, and the next write
// replaces the stored snapshot.
func (s *Snapshots) Load(ctx context.Context, ix Applier, usable func(Offsets) error) (Offsets, SnapshotStats, error) {
	start := time.Now()
	var st SnapshotStats
	offsets, err := s.meta(ctx, usable)
	if err != nil {
		s.markReset()
		return nil, st, err
	}
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
			case groups <- s.keys[i:min(i+group, snapshotBuckets)]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for keys := range groups {
				pipe := s.rdb.Pipeline()
				cmds := make([]*redis.MapStringStringCmd, len(keys))
				for i, k := range keys {
					cmds[i] = pipe.HGetAll(ctx, k)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					select {
					case errc <- fmt.Errorf("read snapshot: %w", err):
					default:
					}
					return
				}
				var d decoded
				for _, c := range cmds {
					for plan, v := range c.Val() {
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
		st.Entries += d.st.Entries
		st.Live += d.st.Live
		st.Withdrawn += d.st.Withdrawn
		st.DeadLetters += d.st.DeadLetters
	}
	select {
	case err := <-errc:
		// Part of the snapshot was applied; replaying the whole topic over
		// it is still right (versions), so the caller replays from the start.
		s.markReset()
		s.redisUp(false)
		return nil, st, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	s.redisUp(true)
	st.Seconds = time.Since(start).Seconds()
	if m := s.cfg.Metrics; m != nil {
		m.SnapshotLoaded.Set(float64(st.Entries))
	}
	return offsets, st, nil
}

// meta reads and checks the snapshot's offsets and age.
func (s *Snapshots) meta(ctx context.Context, usable func(Offsets) error) (Offsets, error) {
	meta, err := s.rdb.HGetAll(ctx, s.metaKey).Result()
	if err != nil {
		s.redisUp(false)
		return nil, fmt.Errorf("read snapshot meta: %w", err)
	}
	s.redisUp(true)
	discard := func(reason, format string, args ...any) error {
		if m := s.cfg.Metrics; m != nil {
			m.SnapshotDiscards.WithLabelValues(reason).Inc()
		}
		return fmt.Errorf("%w: %s", ErrNoSnapshot, fmt.Sprintf(format, args...))
	}
	if len(meta) == 0 {
		return nil, fmt.Errorf("%w: none in Redis", ErrNoSnapshot)
	}
	if meta["topic"] != s.cfg.Topic {
		return nil, discard("topic", "written for another topic")
	}
	at, err := strconv.ParseInt(meta["written_at"], 10, 64)
	if err != nil {
		return nil, discard("corrupt", "written_at unreadable")
	}
	if age := s.cfg.Now().Sub(time.Unix(at, 0)); age > s.cfg.MaxAge {
		return nil, discard("too_old", "written %s ago, more than the %s allowed", age.Round(time.Second), s.cfg.MaxAge)
	}
	raw, err := s.rdb.HGetAll(ctx, s.offKey).Result()
	if err != nil {
		s.redisUp(false)
		return nil, fmt.Errorf("read snapshot offsets: %w", err)
	}
	offsets := Offsets{}
	for p, o := range raw {
		pi, err1 := strconv.Atoi(p)
		oi, err2 := strconv.ParseInt(o, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, discard("corrupt", "offsets unreadable")
		}
		offsets[pi] = oi
	}
	if usable != nil {
		if err := usable(offsets); err != nil {
			return nil, discard("offsets", "%v", err)
		}
	}
	return offsets, nil
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

func (s *Snapshots) markReset() {
	s.mu.Lock()
	s.reset = true
	s.mu.Unlock()
}

// Record implements Recorder: it notes what a batch changed and the offsets
// the index reflects after it.
func (s *Snapshots) Record(changes []Applied, offsets Offsets) {
	s.mu.Lock()
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

// writeChunk bounds the entries one script call carries.
const writeChunk = 2000

// Flush writes what changed since the last write, then the offsets. On
// failure the changes are kept for the next try.
func (s *Snapshots) Flush(ctx context.Context) error {
	s.mu.Lock()
	pending, offsets, reset := s.pending, s.offsets, s.reset
	if offsets == nil {
		s.mu.Unlock()
		return nil // the consumer has not started: nothing the offsets could cover
	}
	s.pending = make(map[string]entry, len(pending)/2)
	s.mu.Unlock()

	err := s.write(ctx, pending, offsets, reset)
	s.mu.Lock()
	if err != nil {
		for k, e := range pending {
			if cur, ok := s.pending[k]; !ok || cur.version < e.version {
				s.pending[k] = e
			}
		}
	} else if reset {
		s.reset = false
	}
	n := len(s.pending)
	s.mu.Unlock()
	s.redisUp(err == nil)
	if m := s.cfg.Metrics; m != nil {
		m.SnapshotPending.Set(float64(n))
		if err != nil {
			m.SnapshotWrites.WithLabelValues("error").Inc()
		} else {
			m.SnapshotWrites.WithLabelValues("ok").Inc()
			m.SnapshotLastOK.Set(float64(s.cfg.Now().Unix()))
		}
	}
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

func (s *Snapshots) write(ctx context.Context, pending map[string]entry, offsets Offsets, reset bool) error {
	if reset {
		keys := append([]string{s.offKey, s.metaKey}, s.keys[:]...)
		if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
			return err
		}
	}
	keys := []string{s.offKey, s.metaKey}
	keyIndex := map[int]int{}
	args := []any{0}
	n := 0
	var buf []byte
	run := func(final bool) error {
		args[0] = n
		if final {
			args = append(args, len(offsets))
			for p, o := range offsets {
				args = append(args, p, o)
			}
			args = append(args, s.cfg.Now().Unix(), s.cfg.Topic)
		} else {
			args = append(args, 0)
		}
		err := writeScript.Run(ctx, s.rdb, keys, args...).Err()
		keys, args, n = keys[:2], args[:1], 0
		clear(keyIndex)
		return err
	}
	for plan, e := range pending {
		b := bucketOf(plan)
		ki, ok := keyIndex[b]
		if !ok {
			keys = append(keys, s.keys[b])
			ki = len(keys) // Lua indexes from 1
			keyIndex[b] = ki
		}
		buf = appendEntry(buf[:0], e)
		args = append(args, ki, plan, string(buf))
		n++
		if n == writeChunk {
			if err := run(false); err != nil {
				return err
			}
		}
	}
	return run(true)
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

package alert

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// RateShare makes each client's rate_per_s the rate of all replicas
// together rather than of each: every replica counts the lookups it serves
// a client in Redis, a count per second shared by all, and serves the client
// at what the others leave of its rate. Lookups never wait on Redis: each
// replica still decides on its own token bucket, whose rate RateShare sets
// every Period from the counts; so the whole can run over a client's rate
// for about a Period when its traffic jumps, and a client whose traffic moves
// to another replica (a replica gone) is held to what the counts leave it
// for a second or two while the old replica's lookups age out of them.
//
// Without Redis (unreachable, or failing) every replica serves each client
// at the client's whole rate, as a lone replica does: a lookup is never
// refused because the counts cannot be read.
type RateShare struct {
	rdb     *redis.Client
	clients *Clients
	period  time.Duration
	prefix  string
	log     *slog.Logger
	up      prometheus.Gauge

	own map[string]*ownCounts // by client ID: a clients file read again keeps a client's counts
	ok  bool                  // the last exchange with Redis succeeded
}

// ownCounts is what this replica reported for a client in the last two
// seconds of Redis's clock.
type ownCounts struct {
	sec       int64
	cur, prev int64
}

// shareMin is the least share of its rate a replica serves a client at,
// however much the counts say the others served: counts a second old must
// not shut a client out entirely.
const shareMin = 0.1

// rateShareScript adds a replica's count to the client's count for the
// current second of Redis's clock (so replicas' clocks need not agree) and
// returns that count, the previous second's and the milliseconds into the
// second. The counts are fields of one hash per client, so the script
// touches only the key it is given (Redis Cluster places it whole).
var rateShareScript = redis.NewScript(`
local t = redis.call('TIME')
local sec = tonumber(t[1])
local ms = math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local cur
if n ~= 0 then
  cur = redis.call('HINCRBY', KEYS[1], sec, n)
else
  cur = tonumber(redis.call('HGET', KEYS[1], sec) or '0')
end
local prev = tonumber(redis.call('HGET', KEYS[1], sec - 1) or '0')
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(f) < sec - 1 then redis.call('HDEL', KEYS[1], f) end
end
redis.call('PEXPIRE', KEYS[1], 5000)
return {sec, ms, cur, prev}
`)

// RateShareConfig configures a RateShare.
type RateShareConfig struct {
	Period time.Duration // how often the counts are exchanged (default 100ms)
	Prefix string        // key prefix, so test runs or deployments sharing a Redis keep apart (default "planflag:rate:")
}

// NewRateShare returns a RateShare for clients' limits; reg may be nil.
func NewRateShare(cfg RateShareConfig, rdb *redis.Client, clients *Clients, log *slog.Logger, reg prometheus.Registerer) *RateShare {
	if cfg.Period <= 0 {
		cfg.Period = 100 * time.Millisecond
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "planflag:rate:"
	}
	r := &RateShare{rdb: rdb, clients: clients, period: cfg.Period, prefix: cfg.Prefix, log: log,
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_rate_share_up",
			Help: "1 while clients' rates are shared with the other replicas through Redis; 0 while each replica serves each client at its whole rate."}),
		own: map[string]*ownCounts{}, ok: true}
	if reg != nil {
		reg.MustRegister(r.up)
	}
	return r
}

// Run exchanges the counts every Period until ctx ends; then it gives each
// client its whole rate back.
func (r *RateShare) Run(ctx context.Context) {
	t := time.NewTicker(r.period)
	defer t.Stop()
	defer r.whole()
	for {
		r.exchange(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// exchange reports what this replica served each client since the last
// exchange, reads what all replicas served, and sets each client's local
// rate to what the others left.
func (r *RateShare) exchange(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(r.period, 500*time.Millisecond))
	defer cancel()
	list := r.clients.current()
	taken := make([]int64, len(list))
	for i, c := range list {
		taken[i] = c.limiter.takeCount()
	}
	for id := range r.own {
		// Clients the file no longer holds (read again since).
		if !slices.ContainsFunc(list, func(c *Client) bool { return c.ID == id }) {
			delete(r.own, id)
		}
	}
	cmds, err := r.send(ctx, list, taken)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis does not hold the script yet (the first exchange, or Redis
		// restarted): load it and send again.
		if err = rateShareScript.Load(ctx, r.rdb).Err(); err == nil {
			cmds, err = r.send(ctx, list, taken)
		}
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return // shutting down
		}
		if r.ok {
			r.log.Warn("client rates not shared with the other replicas: Redis unreachable; each client gets its whole rate here",
				"err", err.Error())
		}
		r.ok = false
		r.up.Set(0)
		r.whole()
		return
	}
	if !r.ok {
		r.log.Info("client rates shared with the other replicas again")
	}
	r.ok = true
	r.up.Set(1)
	for i, c := range list {
		v, err := cmds[i].Int64Slice()
		if err != nil || len(v) != 4 {
			continue
		}
		sec, ms, cur, prev := v[0], v[1], v[2], v[3]
		own := r.own[c.ID]
		if own == nil {
			own = &ownCounts{sec: sec}
			r.own[c.ID] = own
		}
		switch {
		case sec == own.sec+1:
			own.prev, own.cur = own.cur, 0
		case sec != own.sec:
			own.prev, own.cur = 0, 0
		}
		own.sec = sec
		own.cur += taken[i]
		// Lookups in the last second, all replicas and this one: the
		// current second's count and the part of the previous second's
		// still within a second of now.
		back := 1 - float64(ms)/1000
		all := float64(cur) + back*float64(prev)
		mine := float64(own.cur) + back*float64(own.prev)
		others := max(0, all-mine)
		// The rate read from the limiter, not c: a clients file read
		// again during the exchange has changed it there.
		c.limiter.share(others, shareMin)
	}
}

// send reports each client's count and reads the counts back, in one round
// trip.
func (r *RateShare) send(ctx context.Context, list []*Client, taken []int64) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(taken))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range list {
			cmds[i] = rateShareScript.EvalSha(ctx, p, []string{r.prefix + c.ID}, taken[i])
		}
		return nil
	})
	return cmds, err
}

// whole gives every client its whole rate on this replica.
func (r *RateShare) whole() {
	for _, c := range r.clients.current() {
		c.limiter.share(0, 1)
	}
}

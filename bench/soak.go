package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// ChurnMix is the share of each kind of event in a steady churn of the plan
// store. Shares need not sum to 1; they are weights.
type ChurnMix struct {
	Update    float64 // a live plan's new version: the patient has moved house
	New       float64 // a plan not seen before
	Withdraw  float64 // a plan.withdrawn event for a live plan
	Tombstone float64 // a null value for a live plan
}

// DefaultChurnMix keeps the live plans steady: as many new plans as
// withdrawals and tombstones.
var DefaultChurnMix = ChurnMix{Update: 0.70, New: 0.15, Withdraw: 0.10, Tombstone: 0.05}

// Churn draws plan-store events that keep a synthetic store changing: it
// knows each live plan's latest event, so updates and withdrawals follow
// the versions the store published. New plans come from a reserve held
// back from the initial store. Safe for concurrent use.
type Churn struct {
	mu      sync.Mutex
	rng     *rand.Rand
	mix     [4]float64 // cumulative weights: update, new, withdraw, tombstone
	live    []*feed.Event
	reserve []*feed.Event
	now     func() time.Time
	counts  [4]int
}

// ChurnKinds names the kinds Counts returns, in order.
var ChurnKinds = [4]string{"update", "new", "withdraw", "tombstone"}

// LivePlans returns the last event of each plan whose last event is an
// upsert: the live plans at the end of events, in plan-ID order.
func LivePlans(events []feed.Event) []*feed.Event {
	latest := map[string]*feed.Event{}
	for i := range events {
		e := &events[i]
		if cur, ok := latest[e.PlanID]; !ok || cur.Version < e.Version {
			latest[e.PlanID] = e
		}
	}
	var live []*feed.Event
	for _, e := range latest {
		if e.Type == feed.TypeUpserted {
			live = append(live, e)
		}
	}
	slices.SortFunc(live, func(a, b *feed.Event) int { return strings.Compare(a.PlanID, b.PlanID) })
	return live
}

// NewChurn splits events (a whole synthetic store, as Generate makes it)
// into the initial store, returned as messages to publish first, and a
// reserve of holdBack live plans, the last in plan-ID order, whose events
// are held back to be published as new plans later.
func NewChurn(events []feed.Event, holdBack int, mix ChurnMix, seed uint64, now func() time.Time) (*Churn, []Message, error) {
	if mix.Update < 0 || mix.New < 0 || mix.Withdraw < 0 || mix.Tombstone < 0 || mix.Update+mix.New+mix.Withdraw+mix.Tombstone <= 0 {
		return nil, nil, fmt.Errorf("churn mix %+v: shares must be at least 0, and one of them more", mix)
	}
	live := LivePlans(events)
	if holdBack >= len(live) {
		return nil, nil, fmt.Errorf("cannot hold back %d of %d live plans as new plans", holdBack, len(live))
	}
	reserve := live[len(live)-holdBack:]
	held := make(map[string]bool, len(reserve))
	for _, e := range reserve {
		held[e.PlanID] = true
	}
	var initial []feed.Event
	for _, e := range events {
		if !held[e.PlanID] {
			initial = append(initial, e)
		}
	}
	msgs, err := EventMessages(initial)
	if err != nil {
		return nil, nil, err
	}
	c := &Churn{rng: rand.New(rand.NewPCG(seed, 0x50a4)), reserve: reserve, now: now}
	// Copies: the churn changes versions and addresses.
	for _, e := range live[:len(live)-holdBack] {
		cp := *e
		c.live = append(c.live, &cp)
	}
	c.mix = [4]float64{mix.Update, mix.New, mix.Withdraw, mix.Tombstone}
	for i := 1; i < len(c.mix); i++ {
		c.mix[i] += c.mix[i-1]
	}
	return c, msgs, nil
}

// Next returns the next churn event. A new plan asked for once the reserve
// is used up, or a change asked for with no live plan left, is drawn as
// another kind (an update, or a new plan).
func (c *Churn) Next() Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.rng.Float64() * c.mix[3]
	kind := 0
	for kind < 3 && u >= c.mix[kind] {
		kind++
	}
	if kind == 1 && len(c.reserve) == 0 {
		kind = 0
	}
	if kind != 1 && len(c.live) == 0 {
		kind = 1
	}
	c.counts[kind]++
	switch kind {
	case 1:
		e := c.reserve[0]
		c.reserve = c.reserve[1:]
		cp := *e
		cp.OccurredAt = c.now().UTC()
		c.live = append(c.live, &cp)
		return c.message(&cp)
	case 0:
		e := c.live[c.rng.IntN(len(c.live))]
		other := c.live[c.rng.IntN(len(c.live))]
		p := *e.Patient
		// Moved to another plan holder's address: the plan's blocking keys
		// change, and its size does not (the previous addresses stay as
		// they were), so the index holds as much after a run of updates as
		// before it.
		if len(other.Patient.Addresses) > 0 && len(p.Addresses) > 0 {
			p.Addresses = append([]matcher.Address{other.Patient.Addresses[0]}, p.Addresses[1:]...)
		}
		e.Patient = &p
		e.Version++
		e.OccurredAt = c.now().UTC()
		return c.message(e)
	}
	e := c.takeLocked(c.rng.IntN(len(c.live)))
	if kind == 3 {
		return Message{Key: e.PlanID}
	}
	return c.message(Withdrawal(e, c.now()))
}

// Take removes a random live plan from the churn and returns its latest
// upsert: the caller withdraws it (a probe of withdrawal latency).
func (c *Churn) Take() (*feed.Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.live) == 0 {
		return nil, false
	}
	return c.takeLocked(c.rng.IntN(len(c.live))), true
}

func (c *Churn) takeLocked(i int) *feed.Event {
	e := c.live[i]
	c.live[i] = c.live[len(c.live)-1]
	c.live[len(c.live)-1] = nil
	c.live = c.live[:len(c.live)-1]
	return e
}

// Live returns the plans the churn holds live, and the new plans left in
// its reserve.
func (c *Churn) Live() (live, reserve int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live), len(c.reserve)
}

// Counts returns the events drawn so far by kind (ChurnKinds).
func (c *Churn) Counts() [4]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts
}

func (c *Churn) message(e *feed.Event) Message {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // a feed.Event always encodes
	}
	return Message{Key: e.PlanID, Value: b}
}

// Withdrawal is the plan.withdrawn event that follows e.
func Withdrawal(e *feed.Event, at time.Time) *feed.Event {
	return &feed.Event{Type: feed.TypeWithdrawn, PlanID: e.PlanID, Version: e.Version + 1, OccurredAt: at.UTC()}
}

// ExactQuery is the lookup a caller giving e's patient's details without
// error makes: NHS number, names, birth date and current postcode.
func ExactQuery(e *feed.Event) matcher.Query {
	p := e.Patient
	q := matcher.Query{NHSNumber: p.NHSNumber, FamilyName: p.FamilyName, BirthDate: p.BirthDate, Gender: p.Gender}
	if len(p.GivenNames) > 0 {
		q.GivenName = p.GivenNames[0]
	}
	if len(p.Addresses) > 0 {
		q.Postcode = p.Addresses[0].Postcode
	}
	return q
}

// Trend fits y = a + b·x by least squares and returns the slope b (0 with
// fewer than two distinct x).
func Trend(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 || math.IsNaN(sxy) {
		return 0
	}
	return sxy / sxx
}

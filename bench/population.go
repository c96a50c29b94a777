package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// Config sets the size and mix of a synthetic data set.
type Config struct {
	Seed             uint64
	Plans            int     // plan holders in the plan store
	Queries          int     // caller queries
	MemberShare      float64 // share of queries from plan holders (the rest are non-members)
	WithdrawFraction float64 // share of plans withdrawn after publication
	MoveFraction     float64 // share of plan holders with a previous address
	StaleEvents      bool    // re-send some older versions after newer ones, as a broker may
	// Today is the reference date for ages and event times.
	Today time.Time
}

// DefaultConfig is the evaluation set the docs report.
func DefaultConfig() Config {
	return Config{Seed: 1, Plans: 50_000, Queries: 10_000, MemberShare: 0.75, WithdrawFraction: 0.02,
		MoveFraction: 0.12, StaleEvents: true, Today: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
}

// Person is one synthetic person, with or without a plan.
type Person struct {
	Given     []string // first given name, then middle names
	Family    string
	Maiden    string // a previous family name, for some married people
	Gender    string
	DOB       time.Time
	NHS       string
	Mobile    string
	Household *Household
	PlanID    string // "" for people without a plan
	Withdrawn bool
	Twin      *Person
	Moved     bool // has a previous address
}

// Household is people who share an address and a landline.
type Household struct {
	Lines    []string
	Home     bool // a care or nursing home: its name is the first line
	Area     string
	Postcode string
	Landline string
	Prev     *Household // where the movers of this household lived before
	Members  []*Person
}

// Dataset is a plan store (as events) and caller queries with the truth.
type Dataset struct {
	Events  []feed.Event
	Queries []LabeledQuery
	People  []*Person // everyone generated, plan holders first in plan-ID order
	Holders []*Person // plan holders, in plan-ID order
}

// LabeledQuery is one caller query with its truth: the plan the caller
// holds ("" for none) and the kind of caller error or non-member it is.
type LabeledQuery struct {
	Query  matcher.Query `json:"query"`
	Expect string        `json:"-"`
	Kind   string        `json:"kind"`
	// Extras names how the caller worded what they gave beyond the
	// error kinds (gen.present): "flat" (the address with its flat),
	// "care-home" (the address with the home's name), "second-given-name"
	// (both given names).
	Extras []string `json:"extras,omitempty"`
	// Plain is the query as it was before present reworded it (nil when
	// it did not): the same caller without the extras, for comparison.
	Plain *matcher.Query `json:"-"`
	// AtHome says the caller lives in a care or nursing home.
	AtHome bool `json:"at_home,omitempty"`
}

// Member reports whether the caller holds a plan.
func (q *LabeledQuery) Member() bool { return q.Expect != "" }

// Withdrawn returns the IDs of withdrawn plans.
func (d *Dataset) Withdrawn() map[string]bool {
	w := map[string]bool{}
	for _, p := range d.Holders {
		if p.Withdrawn {
			w[p.PlanID] = true
		}
	}
	return w
}

// gen holds the generator's state.
type gen struct {
	cfg Config
	rng *rand.Rand
	// extra draws how callers word what they give (present), and homes
	// which of the oldest who live alone live in a care home (careHome),
	// each apart from rng so that the people, events, callers and errors
	// rng draws are the same with them as without.
	extra, homes *rand.Rand
	ref          *refData
	nhs          map[string]bool
	tel          map[string]bool
}

func newGen(cfg Config) *gen {
	return &gen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed*0x9e3779b97f4a7c15+1)),
		extra: rand.New(rand.NewPCG(cfg.Seed, 0xe47a)), homes: rand.New(rand.NewPCG(cfg.Seed, 0xca7e)), ref: loadRef(),
		nhs: map[string]bool{}, tel: map[string]bool{}}
}

// Generate builds a data set: a population in households, the plan store's
// events, and caller queries.
func Generate(cfg Config) (*Dataset, error) {
	if cfg.Plans < 1 || cfg.Queries < 0 {
		return nil, fmt.Errorf("generate: need at least one plan and no negative query count")
	}
	if !(cfg.WithdrawFraction >= 0 && cfg.WithdrawFraction <= 1) {
		return nil, fmt.Errorf("generate: the withdrawn share must be between 0 and 1")
	}
	if cfg.Today.IsZero() {
		cfg.Today = DefaultConfig().Today
	}
	g := newGen(cfg)
	d := &Dataset{}
	for len(d.Holders) < cfg.Plans {
		for _, p := range g.household().Members {
			d.People = append(d.People, p)
			if p.PlanID != "" && len(d.Holders) < cfg.Plans {
				d.Holders = append(d.Holders, p)
				p.PlanID = fmt.Sprintf("UCP-%07d", len(d.Holders))
			} else {
				p.PlanID = ""
			}
		}
	}
	d.Events = g.events(d.Holders)
	if cfg.Queries > 0 && len(d.Withdrawn()) == len(d.Holders) {
		return nil, fmt.Errorf("generate: every plan is withdrawn, so no query can come from a plan holder: withdraw a smaller share")
	}
	d.Queries = g.queries(d)
	return d, nil
}

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

// household makes one household of 1–4 people; plan holders are marked with
// a placeholder plan ID.
func (g *gen) household() *Household {
	h := g.address()
	if g.chance(0.6) {
		h.Landline = g.phone(true)
	}
	family := g.ref.surnames.draw(g.rng.Float64())
	elderAge := func() int {
		if g.chance(0.82) {
			return 65 + int(math.Min(40, g.rng.ExpFloat64()*10))
		}
		return 18 + g.rng.IntN(47)
	}
	u := g.rng.Float64()
	switch {
	case u < 0.40: // one person
		p := g.person(family, g.gender(), elderAge())
		h.add(p)
		g.careHome(h, p)
	case u < 0.85: // a couple, maybe with an adult child
		age := elderAge()
		a := g.person(family, "female", age)
		b := g.person(family, "male", age+g.rng.IntN(9)-3)
		if g.chance(0.15) { // kept her own name
			a.Family = g.ref.surnames.draw(g.rng.Float64())
		} else if g.chance(0.7) {
			a.Maiden = g.ref.surnames.draw(g.rng.Float64())
		}
		h.add(a)
		h.add(b)
		if g.chance(0.2) && age > 60 {
			h.add(g.person(family, g.gender(), age-20-g.rng.IntN(15)))
		}
	case u < 0.93: // twins, living together or with a spouse
		age := elderAge()
		a, b := g.person(family, g.gender(), age), g.person(family, g.gender(), age)
		b.DOB = a.DOB
		// Twins have different names, often sharing an initial; never the
		// same name spelled two ways, a name and its nickname, or one
		// twin's first name as the other's middle name.
		sameInitial := g.chance(0.3)
		for tries := 0; tries < 1000 && (sameInitial && b.Given[0][0] != a.Given[0][0] || g.sameName(a.Given[0], b.Given[0]) ||
			slices.Contains(a.Given[1:], b.Given[0]) || slices.Contains(b.Given[1:], a.Given[0])); tries++ {
			b.Given[0] = g.givenName(b.Gender)
		}
		a.Twin, b.Twin = b, a
		h.add(a)
		h.add(b)
	default: // a parent and an adult child
		age := elderAge()
		h.add(g.person(family, g.gender(), age))
		h.add(g.person(family, g.gender(), max(18, age-22-g.rng.IntN(15))))
	}
	// Who holds a plan: most households one person, some two.
	holders := 0
	for i, p := range h.Members {
		age := g.cfg.Today.Year() - p.DOB.Year()
		pr := 0.25
		if age >= 65 {
			pr = 0.7
		}
		if i == 0 {
			pr = 0.9
		}
		if holders > 0 {
			pr *= 0.35
		}
		if g.chance(pr) {
			p.PlanID = "pending"
			holders++
		}
	}
	if g.chance(g.cfg.MoveFraction) {
		h.Prev = g.address()
		for _, p := range h.Members {
			p.Moved = true
		}
	}
	return h
}

// sameName reports two given names that are one name: equal, one edit
// apart (Connor, Conor), or one a nickname of the other (Thomas, Tommy).
func (g *gen) sameName(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if editDistance(a, b) <= 1 {
		return true
	}
	for _, n := range g.ref.nicknames[a] {
		if n == b {
			return true
		}
	}
	for _, n := range g.ref.nicknames[b] {
		if n == a {
			return true
		}
	}
	return false
}

// editDistance is the Levenshtein distance.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// careHome moves some of the oldest who live alone into a care or nursing
// home: a quarter of those 85 and over (a modelling choice, not a census
// figure: enough residents to measure the communal rule's cost on, and
// plan holders are older and frailer than most). The home's name becomes
// the address's first line, as the plan store records it; the street,
// postcode and landline stay the household's.
func (g *gen) careHome(h *Household, p *Person) {
	if g.cfg.Today.Year()-p.DOB.Year() < 85 || g.homes.Float64() >= 0.25 {
		return
	}
	names := g.ref.streetNames
	place := [...]string{"House", "Lodge", "Manor", "Hall"}[g.homes.IntN(4)]
	kind := [...]string{"Care Home", "Nursing Home", "Residential Home"}[g.homes.IntN(3)]
	h.Lines = []string{names[g.homes.IntN(len(names))] + " " + place + " " + kind, h.Lines[len(h.Lines)-1]}
	h.Home = true
}

func (h *Household) add(p *Person) {
	p.Household = h
	h.Members = append(h.Members, p)
}

func (g *gen) gender() string {
	if g.chance(0.53) {
		return "female"
	}
	return "male"
}

func (g *gen) givenName(gender string) string {
	if gender == "female" {
		return g.ref.female.draw(g.rng.Float64())
	}
	return g.ref.male.draw(g.rng.Float64())
}

func (g *gen) person(family, gender string, age int) *Person {
	p := &Person{Family: family, Gender: gender}
	p.Given = []string{g.givenName(gender)}
	if g.chance(0.6) {
		if m := g.givenName(gender); m != p.Given[0] {
			p.Given = append(p.Given, m)
		}
	}
	birth := g.cfg.Today.AddDate(-age, 0, -g.rng.IntN(365))
	p.DOB = time.Date(birth.Year(), birth.Month(), birth.Day(), 0, 0, 0, 0, time.UTC)
	if g.chance(0.9) {
		p.NHS = g.nhsNumber()
	}
	if g.chance(0.7) {
		p.Mobile = g.phone(false)
	}
	return p
}

// address draws a real postcode; the street follows from the postcode, so
// households in one postcode are neighbours on the same street.
func (g *gen) address() *Household {
	i := g.rng.IntN(len(g.ref.postcodes))
	pc := g.ref.postcodes[i]
	sr := rand.New(rand.NewPCG(uint64(i), 7))
	street := g.ref.streetNames[sr.IntN(len(g.ref.streetNames))] + " " + streetTypes[sr.IntN(len(streetTypes))]
	lines := []string{strconv.Itoa(1+g.rng.IntN(180)) + " " + street}
	if g.chance(0.15) {
		lines = append([]string{"Flat " + strconv.Itoa(1+g.rng.IntN(12))}, lines...)
	}
	return &Household{Lines: lines, Area: g.ref.postcodeArea[i], Postcode: pc}
}

var streetTypes = []string{"Road", "Street", "Avenue", "Close", "Lane", "Drive", "Way", "Crescent", "Gardens",
	"Place", "Court", "Grove", "Terrace", "Hill", "Park", "View", "Walk", "Mews", "Square", "Rise"}

// nhsNumber draws a unique ten-digit number with a valid modulus-11 check digit.
func (g *gen) nhsNumber() string {
	for {
		var b [10]byte
		b[0] = byte('4' + g.rng.IntN(6)) // 4–9: the ranges England and Wales issue
		for i := 1; i < 9; i++ {
			b[i] = byte('0' + g.rng.IntN(10))
		}
		check, ok := matcher.NHSCheckDigit(string(b[:9]))
		if !ok {
			continue
		}
		b[9] = check
		if s := string(b[:]); !g.nhs[s] {
			g.nhs[s] = true
			return s
		}
	}
}

// phone draws a unique UK number in E.164: a mobile (+447…) or a landline.
func (g *gen) phone(landline bool) string {
	for {
		var s string
		if landline {
			s = "+44" + strconv.Itoa(1+g.rng.IntN(2)) + fmt.Sprintf("%09d", g.rng.IntN(1_000_000_000))
		} else {
			s = "+447" + strconv.Itoa(4+g.rng.IntN(6)) + fmt.Sprintf("%08d", g.rng.IntN(100_000_000))
		}
		if !g.tel[s] {
			g.tel[s] = true
			return s
		}
	}
}

// patient renders a person as the plan store publishes them; moved says
// whether they have moved yet (the previous address follows the current).
func (g *gen) patient(p *Person, moved bool) *matcher.Patient {
	h := p.Household
	pt := &matcher.Patient{NHSNumber: p.NHS, GivenNames: append([]string(nil), p.Given...), FamilyName: p.Family,
		BirthDate: p.DOB.Format("2006-01-02"), Gender: p.Gender}
	if p.Maiden != "" {
		pt.OtherNames = []matcher.Name{{GivenNames: []string{p.Given[0]}, FamilyName: p.Maiden, Use: "maiden"}}
	}
	cur, prev := h, h.Prev
	if prev != nil && !moved {
		cur, prev = prev, nil
	}
	pt.Addresses = []matcher.Address{{Lines: cur.Lines, City: cur.Area, Postcode: cur.Postcode}}
	if prev != nil {
		pt.Addresses = append(pt.Addresses, matcher.Address{Lines: prev.Lines, City: prev.Area, Postcode: prev.Postcode})
	}
	if p.Mobile != "" {
		m := p.Mobile
		if g.chance(0.1) { // some records hold the national form
			m = "0" + m[3:]
		}
		pt.Phones = append(pt.Phones, m)
	}
	if h.Landline != "" {
		pt.Phones = append(pt.Phones, h.Landline)
	}
	return pt
}

// events publishes the plan store: an upsert per plan, updates for movers
// (half of them published before the move, then moved), withdrawals, and
// stale re-sends that a consumer must ignore.
func (g *gen) events(holders []*Person) []feed.Event {
	t := g.cfg.Today.AddDate(0, -6, 0)
	tick := func() time.Time { t = t.Add(time.Duration(1+g.rng.IntN(60)) * time.Second); return t }
	evs := make([]feed.Event, 0, len(holders)*11/10)
	version := map[string]uint64{}
	var later []func()
	for _, p := range holders {
		p := p
		if p.Moved && g.chance(0.5) {
			evs = append(evs, feed.Event{Type: feed.TypeUpserted, PlanID: p.PlanID, Version: 1, OccurredAt: tick(), Patient: g.patient(p, false)})
			version[p.PlanID] = 1
			later = append(later, func() {
				version[p.PlanID]++
				evs = append(evs, feed.Event{Type: feed.TypeUpserted, PlanID: p.PlanID, Version: version[p.PlanID], OccurredAt: tick(), Patient: g.patient(p, true)})
			})
		} else {
			evs = append(evs, feed.Event{Type: feed.TypeUpserted, PlanID: p.PlanID, Version: 1, OccurredAt: tick(), Patient: g.patient(p, true)})
			version[p.PlanID] = 1
		}
	}
	for _, f := range later {
		f()
	}
	var stale []feed.Event
	for _, p := range holders {
		if g.chance(g.cfg.WithdrawFraction) {
			p.Withdrawn = true
			version[p.PlanID]++
			evs = append(evs, feed.Event{Type: feed.TypeWithdrawn, PlanID: p.PlanID, Version: version[p.PlanID], OccurredAt: tick()})
			if g.cfg.StaleEvents && g.chance(0.5) {
				stale = append(stale, feed.Event{Type: feed.TypeUpserted, PlanID: p.PlanID, Version: 1, OccurredAt: tick(), Patient: g.patient(p, true)})
			}
		} else if g.cfg.StaleEvents && version[p.PlanID] > 1 && g.chance(0.2) {
			stale = append(stale, feed.Event{Type: feed.TypeUpserted, PlanID: p.PlanID, Version: 1, OccurredAt: tick(), Patient: g.patient(p, false)})
		}
	}
	return append(evs, stale...)
}

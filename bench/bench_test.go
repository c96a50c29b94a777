package bench

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

func small() Config {
	c := DefaultConfig()
	c.Plans, c.Queries = 3000, 2000
	return c
}

func TestGenerateDeterministic(t *testing.T) {
	write := func() []byte {
		ds, err := Generate(small())
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := ds.WriteEvents(&b); err != nil {
			t.Fatal(err)
		}
		if err := ds.WriteQueries(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if a, b := write(), write(); !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different data")
	}
	c := small()
	c.Seed = 2
	ds, _ := Generate(c)
	var b bytes.Buffer
	ds.WriteEvents(&b)
	if bytes.HasPrefix(write(), b.Bytes()[:1000]) {
		t.Error("another seed gave the same data")
	}
}

func TestGeneratedData(t *testing.T) {
	ds, err := Generate(small())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Holders) != 3000 || len(ds.Queries) != 2000 {
		t.Fatalf("%d plans, %d queries", len(ds.Holders), len(ds.Queries))
	}
	var twins, maiden, moved, withdrawn, stale int
	applied := map[string]uint64{}
	for _, ev := range ds.Events {
		if _, err := feed.Decode(mustJSON(t, ev)); err != nil {
			t.Fatalf("event %s does not decode: %v", ev.PlanID, err)
		}
		if v, ok := applied[ev.PlanID]; ok && ev.Version <= v {
			stale++
			continue
		}
		applied[ev.PlanID] = ev.Version
		if ev.Type == feed.TypeWithdrawn {
			withdrawn++
			continue
		}
		p := ev.Patient
		if p.NHSNumber != "" && !matcher.ValidNHSNumber(p.NHSNumber) {
			t.Errorf("invalid NHS number in %s", ev.PlanID)
		}
		for _, a := range p.Addresses {
			if !IsRealPostcode(a.Postcode) {
				t.Errorf("postcode of %s is not from the real list", ev.PlanID)
			}
		}
		if len(p.OtherNames) > 0 {
			maiden++
		}
		if len(p.Addresses) > 1 {
			moved++
		}
	}
	for _, p := range ds.Holders {
		if p.Twin != nil {
			twins++
		}
	}
	if twins == 0 || maiden == 0 || moved == 0 || withdrawn == 0 || stale == 0 {
		t.Errorf("twins %d, maiden names %d, movers %d, withdrawn %d, stale events %d: each should occur", twins, maiden, moved, withdrawn, stale)
	}
	// Queries: members expect a live plan; withdrawn patients are non-members.
	w := ds.Withdrawn()
	kinds := map[string]int{}
	members := 0
	for _, q := range ds.Queries {
		kinds[strings.Split(q.Kind, "+")[0]]++
		if q.Member() {
			members++
			if w[q.Expect] {
				t.Errorf("query expects withdrawn plan %s", q.Expect)
			}
		}
		if strings.HasPrefix(q.Kind, "withdrawn") && q.Member() {
			t.Errorf("withdrawn patient labelled a member")
		}
	}
	if share := float64(members) / float64(len(ds.Queries)); share < 0.7 || share > 0.8 {
		t.Errorf("member share %.2f, configured 0.75", share)
	}
	for _, k := range []string{"clean", "nickname", "family-typo", "dob-day-month-swap", "household-member", "twin", "namesake", "withdrawn", "stranger"} {
		if kinds[k] == 0 {
			t.Errorf("no %s queries", k)
		}
	}
}

func mustJSON(t *testing.T, ev feed.Event) []byte {
	t.Helper()
	ds := Dataset{Events: []feed.Event{ev}}
	var b bytes.Buffer
	if err := ds.WriteEvents(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestQueriesRoundTrip(t *testing.T) {
	ds, _ := Generate(small())
	var b bytes.Buffer
	if err := ds.WriteQueries(&b); err != nil {
		t.Fatal(err)
	}
	back, err := ReadQueries(&b)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ds.Queries)
	for i := range want {
		want[i].Plain = nil // the generator's own, not written
	}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("round trip changed the queries")
	}
	_, err = ReadQueries(strings.NewReader("{\"query\":{},\"expect\":null}\n\n{oops\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad line error %v, want it to name line 3", err)
	}
}

func TestFEBRL4(t *testing.T) {
	ds, err := FEBRL4("../testdata/febrl/dataset4a.csv", "../testdata/febrl/dataset4b.csv", FEBRLOptions{})
	if err != nil {
		t.Fatalf("FEBRL 4 (testdata/febrl): %v", err)
	}
	members := 0
	for _, q := range ds.Queries {
		if q.Member() {
			members++
		}
	}
	if len(ds.Queries) != 5000 || len(ds.Events) < 2400 || len(ds.Events) > 2600 || members != len(ds.Events) {
		t.Errorf("%d callers, %d plans, %d members", len(ds.Queries), len(ds.Events), members)
	}
	// Postcodes map one character per digit.
	check := func(au, want string) {
		t.Helper()
		if got := ukPostcode(au); got != want {
			t.Errorf("ukPostcode(%s) = %q, want %q", au, got, want)
		}
		if _, err := matcher.ParsePostcode(want); want != "" && err != nil {
			t.Errorf("%s is not a UK postcode: %v", want, err)
		}
	}
	check("4223", "SF2 2EZ")
	check("4224", "SF2 2FZ")
	check("0000", "SA0 0AZ")
	check("123", "")
	check("12a4", "")
	// Every id maps to a valid number; a caller's number is the original's
	// when the id is right, and invalid (not somebody else's) when one digit
	// is wrong or two neighbours are swapped.
	for id := range 3000 {
		orig := strconv.Itoa(1_000_000 + id*2_917)
		nhs := idAsNHS(orig)
		if !matcher.ValidNHSNumber(nhs) {
			t.Fatalf("idAsNHS(%s) = %q, not a valid NHS number", orig, nhs)
		}
		if got := callerNHS(orig, orig); got != nhs {
			t.Fatalf("callerNHS(%s, itself) = %q, want %q", orig, got, nhs)
		}
		typo := []byte(orig)
		typo[id%len(typo)] = '0' + (typo[id%len(typo)]-'0'+1+byte(id%9))%10
		swap := []byte(orig)
		i := id % (len(swap) - 1)
		swap[i], swap[i+1] = swap[i+1], swap[i]
		for _, bad := range []string{string(typo), string(swap)} {
			if bad != orig && matcher.ValidNHSNumber(callerNHS(bad, orig)) {
				t.Fatalf("callerNHS(%s, %s) = %q is valid", bad, orig, callerNHS(bad, orig))
			}
		}
	}
	if callerNHS("", "5304218") != "" || callerNHS("12x", "5304218") != "" {
		t.Errorf("callerNHS made a number from no id")
	}
}

func TestBaselineAndEvaluate(t *testing.T) {
	ds, _ := Generate(small())
	base := NewBaseline(ds.Events)
	rep := Evaluate("baseline", base, ds.Queries, ds.Withdrawn(), nil)
	if rep.All.Queries != len(ds.Queries) || rep.All.Leaks != 0 || rep.All.MatchRecall() <= 0.2 || rep.All.MatchRecall() >= 0.8 {
		t.Errorf("baseline report %+v", rep.All)
	}
	var b bytes.Buffer
	WriteMarkdown(&b, rep)
	if !strings.Contains(b.String(), "| match recall |") {
		t.Errorf("markdown:\n%s", b.String())
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(small()); err != nil {
			b.Fatal(err)
		}
	}
}

// The churn keeps the store steady and follows its versions: updates and
// withdrawals are newer than what the store published for the plan, new
// plans come only from the reserve held back, and no plan changes after it
// was withdrawn or taken by a probe.
func TestChurn(t *testing.T) {
	ds, err := Generate(small())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ch, initial, err := NewChurn(ds.Events, 500, DefaultChurnMix, 1, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	version := map[string]uint64{}
	gone := map[string]bool{} // withdrawn in the initial store, by the churn, or taken
	for _, m := range initial {
		ev, err := feed.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Version > version[ev.PlanID] {
			version[ev.PlanID] = ev.Version
			gone[ev.PlanID] = ev.Type == feed.TypeWithdrawn
		}
	}
	live0, reserve0 := ch.Live()
	if reserve0 != 500 || live0+500+len(ds.Withdrawn()) != len(ds.Holders) {
		t.Fatalf("live %d, reserve %d of %d plans (%d withdrawn)", live0, reserve0, len(ds.Holders), len(ds.Withdrawn()))
	}
	probe, ok := ch.Take()
	if !ok || gone[probe.PlanID] {
		t.Fatalf("Take gave %v, %v", probe, ok)
	}
	gone[probe.PlanID] = true
	kinds := map[string]int{}
	for range 2000 {
		m := ch.Next()
		if gone[m.Key] {
			t.Fatalf("a change to %s after it was withdrawn or taken", m.Key)
		}
		if m.Value == nil {
			kinds["tombstone"]++
			gone[m.Key] = true
			continue
		}
		ev, err := feed.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		v, seen := version[ev.PlanID]
		switch {
		case !seen:
			kinds["new"]++
		case ev.Version <= v:
			t.Fatalf("%s: version %d after %d", ev.PlanID, ev.Version, v)
		case ev.Type == feed.TypeWithdrawn:
			kinds["withdraw"]++
			gone[ev.PlanID] = true
		default:
			kinds["update"]++
		}
		version[ev.PlanID] = ev.Version
	}
	got := ch.Counts()
	for i, k := range ChurnKinds {
		if got[i] != kinds[k] {
			t.Errorf("Counts: %d %s, seen %d", got[i], k, kinds[k])
		}
	}
	if kinds["update"] < 1200 || kinds["new"] < 200 || kinds["withdraw"] < 120 || kinds["tombstone"] < 50 {
		t.Errorf("kinds %v, want about 70/15/10/5 %% of 2000", kinds)
	}
	if live, _ := ch.Live(); live < live0-100 || live > live0+100 {
		t.Errorf("live plans went from %d to %d: the churn should keep them steady", live0, live)
	}
	if _, _, err := NewChurn(ds.Events, 10, ChurnMix{}, 1, time.Now); err == nil {
		t.Error("a mix of no events was accepted")
	}
}

func TestTrend(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	if got := Trend(xs, []float64{1, 3, 5, 7, 9}); got != 2 {
		t.Errorf("slope %v of y = 1 + 2x, want 2", got)
	}
	if got := Trend(xs, []float64{5, 5, 5, 5, 5}); got != 0 {
		t.Errorf("slope %v of a flat line", got)
	}
	if got := Trend([]float64{1, 1}, []float64{1, 2}); got != 0 {
		t.Errorf("slope %v with one distinct x, want 0", got)
	}
}

// Updates move plans without growing them: a soak's heap per live plan must
// not rise because the churn gave its plans more addresses (it did: every
// update kept the last address as a previous one, and the index's postings
// grew 12 % in 400,000 events with the live plans steady).
func TestChurnUpdatesKeepPlanSize(t *testing.T) {
	ds, err := Generate(small())
	if err != nil {
		t.Fatal(err)
	}
	addresses, version := map[string]int{}, map[string]uint64{}
	for _, e := range ds.Events {
		if e.Patient != nil && e.Version > version[e.PlanID] {
			addresses[e.PlanID], version[e.PlanID] = len(e.Patient.Addresses), e.Version
		}
	}
	ch, _, err := NewChurn(ds.Events, 10, ChurnMix{Update: 1}, 1, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for range 5000 {
		ev, err := feed.Decode(ch.Next().Value)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(ev.Patient.Addresses); got != addresses[ev.PlanID] {
			t.Fatalf("%s: %d addresses after an update, %d before", ev.PlanID, got, addresses[ev.PlanID])
		}
	}
}

// TestEventChunks checks the chunked generator: chunks of the asked size
// with the seeds in turn, the callers from the first only, and plan IDs
// that are unique over the chunks and the same in events and holders.
func TestEventChunks(t *testing.T) {
	cfg := small()
	cfg.Plans = 2500
	var sizes []int
	ids := map[string]bool{}
	err := generateEventChunks(cfg, 1000, func(chunk int, ds *Dataset) error {
		sizes = append(sizes, len(ds.Holders))
		if (len(ds.Queries) > 0) != (chunk == 0) {
			t.Errorf("chunk %d has %d callers", chunk, len(ds.Queries))
		}
		c := cfg
		c.Seed, c.Plans, c.Queries = cfg.Seed+uint64(chunk), len(ds.Holders), 0
		alone, err := Generate(c)
		if err != nil {
			return err
		}
		if len(alone.Events) != len(ds.Events) {
			t.Fatalf("chunk %d: %d events, its population alone %d", chunk, len(ds.Events), len(alone.Events))
		}
		prefix := ""
		if chunk > 0 {
			prefix = "C" + strconv.Itoa(chunk) + "-"
		}
		for i, ev := range ds.Events {
			if ev.PlanID != prefix+alone.Events[i].PlanID {
				t.Fatalf("chunk %d event %d: plan %q, want %q", chunk, i, ev.PlanID, prefix+alone.Events[i].PlanID)
			}
			if ev.Type == feed.TypeUpserted {
				ids[ev.PlanID] = true
			}
		}
		for i, p := range ds.Holders {
			if p.PlanID != prefix+alone.Holders[i].PlanID {
				t.Fatalf("chunk %d holder %d: plan %q, want %q", chunk, i, p.PlanID, prefix+alone.Holders[i].PlanID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1000, 1000, 500}; !slices.Equal(sizes, want) {
		t.Fatalf("chunk sizes %v, want %v", sizes, want)
	}
	if len(ids) != cfg.Plans {
		t.Errorf("%d distinct plans over the chunks, want %d", len(ids), cfg.Plans)
	}
}

// Lookups leaves out exactly the callers the matcher refuses.
func TestLookups(t *testing.T) {
	future := time.Now().UTC().AddDate(1, 0, 0).Format("2006-01-02")
	qs := []LabeledQuery{
		{Query: matcher.Query{GivenName: "Ann", FamilyName: "Lee"}},
		{Query: matcher.Query{GivenName: "Ann", FamilyName: "Lee", BirthDate: future}},
		{Query: matcher.Query{GivenName: "Ann"}},
		{Query: matcher.Query{Phone: "07700 900123"}},
	}
	kept, refused := Lookups(qs)
	if refused != 2 || len(kept) != 2 || kept[0].Query.BirthDate != "" || kept[1].Query.Phone == "" {
		t.Errorf("kept %+v, refused %d; want the first and last, 2 refused", kept, refused)
	}
}

// Some callers give the flat or care home with the address, or both given
// names; the query without the wording is kept beside it, and differs in
// that alone.
func TestCallersWording(t *testing.T) {
	ds, err := Generate(small())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, lq := range ds.Queries {
		if len(lq.Extras) == 0 {
			if lq.Plain != nil {
				t.Fatalf("%+v: a plain query kept without wording", lq)
			}
			continue
		}
		p := *lq.Plain
		for _, e := range lq.Extras {
			seen[e]++
			switch e {
			case "flat":
				if !strings.HasPrefix(lq.Query.Address, "Flat ") || !strings.HasSuffix(lq.Query.Address, ", "+p.Address) {
					t.Errorf("flat: %q from %q", lq.Query.Address, p.Address)
				}
				p.Address = lq.Query.Address
			case "care-home":
				if !lq.AtHome || !strings.Contains(lq.Query.Address, " Home, ") || !strings.HasSuffix(lq.Query.Address, ", "+p.Address) {
					t.Errorf("care home: %q from %q (lives in one: %v)", lq.Query.Address, p.Address, lq.AtHome)
				}
				p.Address = lq.Query.Address
			case "second-given-name":
				if !strings.HasPrefix(lq.Query.GivenName, p.GivenName+" ") {
					t.Errorf("second given name: %q from %q", lq.Query.GivenName, p.GivenName)
				}
				p.GivenName = lq.Query.GivenName
			default:
				t.Errorf("unknown wording %q", e)
			}
		}
		if p != lq.Query {
			t.Errorf("wording changed more than it says: %+v from %+v", lq.Query, *lq.Plain)
		}
	}
	if seen["flat"] == 0 || seen["second-given-name"] == 0 || seen["care-home"] == 0 {
		t.Errorf("wordings drawn %v, want each", seen)
	}
}

package matcher

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// margaret is the DESIGN.md example plan holder.
func margaret() *Patient {
	return &Patient{
		NHSNumber: "9434765919", GivenNames: []string{"Margaret", "Ann"}, FamilyName: "O'Brien",
		OtherNames: []Name{{GivenNames: []string{"Margaret"}, FamilyName: "Kelly", Use: "maiden"}},
		BirthDate:  "1941-03-07", Gender: "female",
		Addresses: []Address{
			{Lines: []string{"Flat 2", "14 Elm Road"}, City: "London", Postcode: "SW1A 1AA"},
			{Lines: []string{"3 Mill Lane"}, City: "Leeds", Postcode: "LS1 4AP"},
		},
		Phones: []string{"+447700900123", "+442079460000"},
	}
}

// household returns people who live with, or share a name with, Margaret.
func householdOf() map[string]*Patient {
	return map[string]*Patient{
		// Her husband: same surname, address and landline.
		"UCP-SPOUSE": {GivenNames: []string{"Patrick"}, FamilyName: "O'Brien", BirthDate: "1938-11-02", Gender: "male",
			Addresses: []Address{{Lines: []string{"Flat 2", "14 Elm Road"}, Postcode: "SW1A 1AA"}}, Phones: []string{"+442079460000"}},
		// Her twin sister, living with her.
		"UCP-TWIN": {GivenNames: []string{"Mary"}, FamilyName: "O'Brien", BirthDate: "1941-03-07", Gender: "female",
			Addresses: []Address{{Lines: []string{"Flat 2", "14 Elm Road"}, Postcode: "SW1A 1AA"}}, Phones: []string{"+442079460000"}},
	}
}

// background files a deterministic crowd so that term frequencies and
// thresholds are those of an index of some size.
func background(ix *Index, n int) {
	given := []string{"John", "Mary", "David", "Susan", "Peter", "Linda", "James", "Patricia", "Robert", "Elizabeth"}
	family := []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Wright"}
	changes := make([]Change, n)
	for i := range changes {
		changes[i] = Change{PlanID: fmt.Sprintf("BG-%d", i), Version: 1, Patient: &Patient{
			GivenNames: []string{given[i%len(given)]}, FamilyName: family[(i/len(given))%len(family)],
			BirthDate: fmt.Sprintf("%d-%02d-%02d", 1925+i%60, 1+i%12, 1+i%28),
			Addresses: []Address{{Lines: []string{fmt.Sprintf("%d High Street", 1+i%90)}, Postcode: fmt.Sprintf("LS%d %dAB", 1+i%20, i%10)}},
		}}
	}
	ix.Apply(changes)
}

func newTestIndex(t testing.TB) *Index {
	t.Helper()
	ix := NewIndex(nil)
	background(ix, 2000)
	if st := ix.Upsert("UCP-123", 7, margaret()); st.Upserted != 1 {
		t.Fatalf("upsert: %+v", st)
	}
	return ix
}

func mustMatch(t *testing.T, ix *Index, q Query) Result {
	t.Helper()
	r, err := ix.Match(q)
	if err != nil {
		t.Fatalf("Match(%+v): %v", q, err)
	}
	return r
}

func TestMatchTiers(t *testing.T) {
	ix := newTestIndex(t)
	check := func(name string, q Query, want Tier, wantPlan string) {
		t.Helper()
		r := mustMatch(t, ix, q)
		if r.Tier != want {
			t.Errorf("%s: tier %v, want %v (%+v)", name, r.Tier, want, r.Candidates)
			return
		}
		if want == TierNone {
			if len(r.Candidates) != 0 {
				t.Errorf("%s: none with candidates", name)
			}
			return
		}
		if len(r.Candidates) == 0 || r.Candidates[0].PlanID != wantPlan {
			t.Errorf("%s: candidates %+v, want %s first", name, r.Candidates, wantPlan)
		}
	}
	full := Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}
	check("clean", full, TierMatch, "UCP-123")
	// A nickname could be a sister's own name (the table links Peter and
	// Patrick, Susan and Hannah): possible, unless her mobile agrees.
	check("nickname", Query{GivenName: "Peggy", FamilyName: "OBrien", BirthDate: "07/03/1941", Postcode: "sw1a1aa"}, TierPossible, "UCP-123")
	check("nickname and mobile", Query{GivenName: "Peggy", FamilyName: "OBrien", BirthDate: "07/03/1941", Phone: "07700 900123"}, TierMatch, "UCP-123")
	check("day-month swapped", Query{GivenName: "Margaret", FamilyName: "O Brien", BirthDate: "1941-07-03", Postcode: "SW1A 1AA"}, TierMatch, "UCP-123")
	check("maiden name", Query{GivenName: "Margaret", FamilyName: "Kelly", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}, TierMatch, "UCP-123")
	check("old postcode", Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "LS1 4AP"}, TierMatch, "UCP-123")
	check("swapped names", Query{GivenName: "OBrien", FamilyName: "Margaret", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}, TierMatch, "UCP-123")
	check("family typo", Query{GivenName: "Margaret", FamilyName: "O'Brian", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}, TierMatch, "UCP-123")
	check("NHS number and birth date", Query{NHSNumber: "943 476 5919", BirthDate: "1941-03-07"}, TierMatch, "UCP-123")
	check("stray space in the given name", Query{GivenName: "Ma rgaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}, TierMatch, "UCP-123")
	check("postcode one character off", Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AB"}, TierMatch, "UCP-123")
	// Another postcode with her house number and street: "14 Elm Road" is
	// in a thousand towns, so possible, hers first (a postcode one
	// character off is a typo: above).
	check("another postcode, same house and street", Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SE9 2QT", Address: "14 Elm Road"}, TierPossible, "UCP-123")
	// Both names and the postcode mistyped: only the birth date and house
	// number file her (kDOBHouse); a flag for the call handler to confirm.
	check("names and postcode mistyped", Query{GivenName: "Margit", FamilyName: "Abrien", BirthDate: "1941-03-07", Postcode: "SE9 2QT", Address: "14 Elm Rd"}, TierPossible, "UCP-123")
	check("mobile only", Query{Phone: "07700 900123"}, TierPossible, "UCP-123")
	check("stranger", Query{GivenName: "Zebedee", FamilyName: "Quimby", BirthDate: "1950-01-01", Postcode: "M1 1AE"}, TierNone, "")

	// An invalid NHS number is not used, and the explanation says so.
	r := mustMatch(t, ix, Query{NHSNumber: "9434765918", GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"})
	if r.Tier != TierMatch || r.Candidates[0].Agreement.NHSNumber != InvalidCheck {
		t.Errorf("invalid NHS number: %+v", r)
	}
	// A valid NHS number that differs rules out a confident match.
	r = mustMatch(t, ix, Query{NHSNumber: "4010232137", GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"})
	if r.Tier == TierMatch {
		t.Errorf("different valid NHS number matched: %+v", r)
	}
}

// The safety rules: household facts alone never make a match; a person who
// lives with, is the twin of, or shares a name with a plan holder is at most
// possible.
func TestMatchSafety(t *testing.T) {
	ix := newTestIndex(t)
	notMatch := func(name string, q Query) {
		t.Helper()
		r := mustMatch(t, ix, q)
		if r.Tier == TierMatch {
			t.Errorf("%s: confident match %+v", name, r.Candidates[0])
		}
	}
	notMatch("household facts only", Query{FamilyName: "O'Brien", Postcode: "SW1A 1AA", Address: "Flat 2, 14 Elm Road", Phone: "020 7946 0000"})
	notMatch("spouse", Query{GivenName: "Patrick", FamilyName: "O'Brien", BirthDate: "1938-11-02", Postcode: "SW1A 1AA", Phone: "020 7946 0000", Address: "14 Elm Rd"})
	notMatch("twin", Query{GivenName: "Mary", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA", Phone: "020 7946 0000"})
	notMatch("namesake elsewhere", Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1952-06-19", Postcode: "M1 1AE"})
	notMatch("namesake born the same day elsewhere, another street", Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "M1 1AE", Address: "14 Oak Road"})
	notMatch("namesake born the same day elsewhere, another house", Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "M1 1AE", Address: "15 Elm Road"})
	notMatch("namesake, birth date one digit off, elsewhere", Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-08", Postcode: "M1 1AE"})
	notMatch("no birth date", Query{GivenName: "Margaret", FamilyName: "O'Brien", Postcode: "SW1A 1AA", Phone: "020 7946 0000"})

	// With the spouse and the twin holding plans too, each is found as
	// themselves and the others are never a confident match.
	for id, p := range householdOf() {
		ix.Upsert(id, 1, p)
	}
	for id, p := range householdOf() {
		r := mustMatch(t, ix, Query{GivenName: p.GivenNames[0], FamilyName: p.FamilyName, BirthDate: p.BirthDate, Postcode: p.Addresses[0].Postcode})
		if r.Tier != TierMatch || r.Candidates[0].PlanID != id {
			t.Errorf("%s not matched as themselves: %+v", id, r)
		}
	}
	r := mustMatch(t, ix, Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"})
	if r.Tier != TierMatch || r.Candidates[0].PlanID != "UCP-123" {
		t.Errorf("Margaret with her twin indexed: %+v", r)
	}
}

func TestWithdrawAndVersions(t *testing.T) {
	ix := newTestIndex(t)
	q := Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}
	if st := ix.Upsert("UCP-123", 7, margaret()); st.Stale != 1 {
		t.Errorf("same version re-applied: %+v", st)
	}
	if st := ix.Withdraw("UCP-123", 8); st.Withdrawn != 1 {
		t.Fatalf("withdraw: %+v", st)
	}
	if r := mustMatch(t, ix, q); r.Tier != TierNone {
		t.Fatalf("withdrawn plan still found: %+v", r)
	}
	// A late copy of an older version must not bring it back.
	if st := ix.Upsert("UCP-123", 7, margaret()); st.Stale != 1 {
		t.Errorf("stale upsert after withdrawal: %+v", st)
	}
	if r := mustMatch(t, ix, q); r.Tier != TierNone {
		t.Fatalf("stale copy resurrected a withdrawn plan: %+v", r)
	}
	if v, live := ix.Version("UCP-123"); v != 8 || live {
		t.Errorf("Version = %d, %v", v, live)
	}
	// Its postings are gone, not merely hidden.
	keys := personKeys(ix.names, mustPerson(ix, margaret()), nil)
	for _, k := range keys {
		ids, _ := ix.post.lookup(k, nil, 1000)
		for _, id := range ids {
			if ix.slots.get(id).Load() == nil {
				t.Fatalf("a withdrawn plan's slot is still filed under a key")
			}
		}
	}
	// Consent given again, as a newer version: found again.
	ix.Upsert("UCP-123", 9, margaret())
	if r := mustMatch(t, ix, q); r.Tier != TierMatch {
		t.Errorf("re-consented plan not found: %+v", r)
	}
	// An update moves her; the old postcode becomes a previous address.
	moved := margaret()
	moved.Addresses = append([]Address{{Lines: []string{"9 Quay Street"}, Postcode: "M3 3JE"}}, moved.Addresses...)
	ix.Upsert("UCP-123", 10, moved)
	r := mustMatch(t, ix, Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "M3 3JE"})
	if r.Tier != TierMatch || r.Candidates[0].Agreement.Postcode != Exact {
		t.Errorf("after move: %+v", r)
	}
	r = mustMatch(t, ix, q)
	if r.Tier != TierMatch || r.Candidates[0].Agreement.Postcode != PreviousAddress {
		t.Errorf("old postcode after move: %+v", r)
	}
}

func mustPerson(ix *Index, p *Patient) *person {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ps, _ := buildPerson(ix.names, "x", p)
	return ps
}

func TestExplanationCarriesNoValues(t *testing.T) {
	ix := newTestIndex(t)
	r := mustMatch(t, ix, Query{NHSNumber: "9434765919", GivenName: "Peggy", FamilyName: "O'Brien", BirthDate: "1941-03-07",
		Postcode: "SW1A 1AA", Phone: "07700900123", Address: "14 Elm Rd", Gender: "female"})
	b, err := json.Marshal(r.Candidates)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.ToLower(string(b))
	for _, v := range []string{"9434765919", "margaret", "peggy", "brien", "1941", "sw1a", "7700", "elm", "female"} {
		if strings.Contains(out, v) {
			t.Errorf("explanation carries %q: %s", v, out)
		}
	}
	want := Agreement{NHSNumber: Exact, GivenName: Nickname, FamilyName: Exact, BirthDate: Exact, Gender: Exact,
		Postcode: Exact, Address: Exact, Phone: Exact}
	if len(r.Candidates) != 1 || r.Candidates[0].Agreement != want {
		t.Errorf("agreement %+v, want %+v", r.Candidates, want)
	}
}

func TestInputErrors(t *testing.T) {
	ix := newTestIndex(t)
	check := func(q Query, field string) {
		t.Helper()
		_, err := ix.Match(q)
		ie, ok := err.(*InputError)
		if !ok || ie.Field != field {
			t.Errorf("Match(%+v) error %v, want an input error for %s", q, err, field)
		}
	}
	check(Query{GivenName: "Margaret", BirthDate: "1941-02-30"}, "birth_date")
	check(Query{GivenName: "Margaret", BirthDate: "March 1941"}, "birth_date")
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", Postcode: "NOT A CODE"}, "postcode")
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", Phone: "call me"}, "phone")
	check(Query{NHSNumber: "12345", GivenName: "Margaret", FamilyName: "O'Brien"}, "nhs_number")
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "purple"}, "gender")
	check(Query{GivenName: "Margaret"}, "query")
	check(Query{Postcode: "SW1A 1AA"}, "query")
	check(Query{}, "query")
	check(Query{GivenName: "123", FamilyName: "O'Brien"}, "given_name")
	// Too long to be a caller's details, or not text.
	long := strings.Repeat("ab ", 40)
	check(Query{GivenName: "Margaret", FamilyName: long}, "family_name")
	check(Query{GivenName: long, FamilyName: "O'Brien"}, "given_name")
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", Address: strings.Repeat(long, 3)}, "address")
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", Postcode: strings.Repeat(" ", 41) + "SW1A 1AA"}, "postcode")
	check(Query{GivenName: "Marg\x00aret", FamilyName: "O'Brien"}, "given_name")
	check(Query{GivenName: "Margaret", FamilyName: "O'Bri\x01en"}, "family_name")
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", Phone: "\x7f07700 900123"}, "phone")
	check(Query{GivenName: "Marg\xffaret", FamilyName: "O'Brien"}, "given_name")
	// A birth date after today (in the UK: tomorrow in UTC is allowed) is
	// refused, unless day and month the other way round are a past date:
	// this year's baby, day and month swapped.
	today := time.Now().UTC()
	for d := time.Date(today.Year(), 1, 1, 0, 0, 0, 0, time.UTC); d.Before(today.AddDate(0, 0, -1)); d = d.AddDate(0, 0, 1) {
		sw := time.Date(d.Year(), time.Month(d.Day()), int(d.Month()), 0, 0, 0, 0, time.UTC)
		if d.Day() > 12 || d.Day() == int(d.Month()) || !sw.After(today.AddDate(0, 0, 2)) {
			continue
		}
		// d is past, its swap is after tomorrow: a caller giving the swap.
		if _, err := ix.Match(Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: sw.Format("2006-01-02")}); err != nil {
			t.Errorf("this year's %s given day and month swapped (%s): %v", d.Format("2006-01-02"), sw.Format("2006-01-02"), err)
		}
		break
	}
	nextJune := fmt.Sprintf("%d-06-20", time.Now().UTC().Year()+1) // no month 20: no swapped reading
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: nextJune}, "birth_date")
	check(Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "2150-06-04"}, "birth_date")
	for _, q := range []Query{
		{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: time.Now().UTC().Format("2006-01-02")},
		{GivenName: "Margaret", FamilyName: "O'Brien", Address: "Flat 2\r\n14 Elm Rd\tLondon"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "Not known"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "UNKNOWN"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "Not Specified"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "Not stated"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "9"}, // the NHS Data Dictionary's codes
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "0"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "2"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Gender: "Indeterminate"},
		{GivenName: "Margaret", FamilyName: "O'Brien", Phone: "WITHHELD"},
		{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07T00:00:00Z"},
		{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07 00:00:00"},
		{GivenName: "Zoë", FamilyName: "Ó Súilleabháin"},
		{GivenName: "Margaret", FamilyName: strings.Repeat("x", maxNameBytes)},
	} {
		if _, err := ix.Match(q); err != nil {
			t.Errorf("Match(%+v): %v", q, err)
		}
	}
	// The error names the field, never the value.
	_, err := ix.Match(Query{GivenName: "Margaret", BirthDate: "1941-02-30"})
	if err == nil || strings.Contains(err.Error(), "1941") {
		t.Errorf("error %v", err)
	}
}

// Lookups run while plans are upserted and withdrawn; run with -race.
func TestConcurrentMatchAndApply(t *testing.T) {
	ix := newTestIndex(t)
	q := Query{GivenName: "Margaret", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := ix.Match(q)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Tier == TierMatch && r.Candidates[0].PlanID != "UCP-123" {
					t.Errorf("matched %s", r.Candidates[0].PlanID)
					return
				}
			}
		}()
	}
	v := uint64(7)
	for i := range 300 {
		v++
		if i%2 == 0 {
			ix.Withdraw("UCP-123", v)
			if r := mustMatch(t, ix, q); r.Tier != TierNone {
				t.Fatalf("withdrawn plan visible after Withdraw returned: %+v", r)
			}
		} else {
			ix.Upsert("UCP-123", v, margaret())
		}
		ix.Upsert(fmt.Sprintf("NEW-%d", i), 1, &Patient{GivenNames: []string{"Anne"}, FamilyName: "Other", BirthDate: "1960-01-01"})
	}
	close(stop)
	wg.Wait()
}

func TestMatchAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	ix := newTestIndex(t)
	q := Query{GivenName: "Peggy", FamilyName: "O'Brien", BirthDate: "07/03/1941", Postcode: "SW1A 1AA", Phone: "07700 900123"}
	mustMatch(t, ix, q)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ix.Match(q); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 5 {
		t.Errorf("Match allocates %.1f times per call, budget 5", allocs)
	}
	t.Logf("allocations per Match: %.1f", allocs)
	// Comparing house numbers (a slip of 144 is 145, 114, 1444…) costs
	// no allocation of its own.
	for _, p := range [][2]uint32{{144 * 32, 145 * 32}, {144 * 32, 1444 * 32}, {14 * 32, 41 * 32}} {
		if n := testing.AllocsPerRun(100, func() { houseSlip(p[0], p[1]) }); n != 0 {
			t.Errorf("houseSlip(%d, %d) allocates %.0f times", p[0]/32, p[1]/32, n)
		}
	}
}

// The parts of a record beyond the first two addresses and phones, and its
// other names, are found by comparisons (which check the record's has bits
// before following more).
func TestRarerRecordParts(t *testing.T) {
	ix := NewIndex(nil)
	ix.Upsert("UCP-9", 1, &Patient{GivenNames: []string{"Edith"}, FamilyName: "Okonkwo", BirthDate: "1938-02-11",
		OtherNames: []Name{{GivenNames: []string{"Ada"}, FamilyName: "Fairweather", Use: "maiden"}},
		Addresses: []Address{{Lines: []string{"1 Mill Lane"}, Postcode: "LS6 2AB"}, {Lines: []string{"2 Kirk Road"}, Postcode: "YO1 7HH"},
			{Lines: []string{"3 Bridge End"}, Postcode: "HG1 5QT"}},
		Phones: []string{"07700 900001", "07700 900002", "07700 900003"}})
	for _, tc := range []struct {
		q    Query
		want func(Agreement) bool
	}{
		{Query{GivenName: "Edith", FamilyName: "Okonkwo", BirthDate: "1938-02-11", Postcode: "HG1 5QT"},
			func(a Agreement) bool { return a.Postcode == PreviousAddress }},
		{Query{GivenName: "Edith", FamilyName: "Okonkwo", BirthDate: "1938-02-11", Phone: "07700 900003"},
			func(a Agreement) bool { return a.Phone == Exact }},
		{Query{GivenName: "Edith", FamilyName: "Fairweather", BirthDate: "1938-02-11", Postcode: "LS6 2AB"},
			func(a Agreement) bool { return a.FamilyName == OtherName }},
		{Query{GivenName: "Ada", FamilyName: "Okonkwo", BirthDate: "1938-02-11", Postcode: "LS6 2AB"},
			func(a Agreement) bool { return a.GivenName == MiddleName }},
	} {
		r := mustMatch(t, ix, tc.q)
		if len(r.Candidates) == 0 || !tc.want(r.Candidates[0].Agreement) {
			t.Errorf("%+v: %+v", tc.q, r)
		}
	}
	p := mustPerson(ix, &Patient{GivenNames: []string{"Edith"}, FamilyName: "Okonkwo",
		Addresses: []Address{{Postcode: "LS6 2AB"}, {Postcode: "YO1 7HH"}}, Phones: []string{"07700 900001"}})
	if p.has != 0 || p.more != nil || p.addrSlots() != 2 || p.phoneSlots() != 2 {
		t.Errorf("a record with nothing more: has %b, more %v", p.has, p.more)
	}
}

// A family name of many parts gives keys for the first maxFamilyParts only:
// what a lookup probes stays bounded whatever the caller sends.
func TestFamilyCodesBounded(t *testing.T) {
	var parts []string
	for i := range 40 {
		parts = append(parts, string(rune('a'+i%26))+string(rune('b'+i/26)))
	}
	full := strings.Join(parts, " ")
	codes := familyCodes(nil, full, SoundexOf(strings.ReplaceAll(full, " ", "")))
	if len(codes) > 1+maxFamilyParts {
		t.Errorf("%d codes for a name of %d parts, want at most %d", len(codes), len(parts), 1+maxFamilyParts)
	}
	if len(familyCodes(nil, "smith jones", SoundexOf("smithjones"))) != 3 {
		t.Error("a double-barrelled name: want the whole and both parts")
	}
}

// Apply says which changes found their plan not live: a withdrawal after a
// withdrawal (a tombstone after plan.withdrawn) or of a plan never seen.
func TestApplyNotLive(t *testing.T) {
	ix := NewIndex(nil)
	changes := []Change{
		{PlanID: "A", Version: 1, Patient: margaret()},
		{PlanID: "A", Version: 2},
		{PlanID: "A", Version: 3},
		{PlanID: "B", Version: 1},
		{PlanID: "A", Version: 4, Patient: margaret()},
	}
	ix.Apply(changes)
	for i, want := range []bool{true, false, true, true, true} {
		if changes[i].NotLive != want {
			t.Errorf("change %d: NotLive %v, want %v", i, changes[i].NotLive, want)
		}
	}
}

// A common name with a slipped birth date and only the outward code: the
// keys on the birth date and the full postcode cannot find the plan, and
// the name's broad keys hold thousands (3,000 John Smiths here); the house
// number and street with the family name still do.
func TestCommonNameFoundByHouse(t *testing.T) {
	ix := NewIndex(nil)
	var changes []Change
	for i := range 3000 {
		changes = append(changes, Change{PlanID: fmt.Sprintf("JS-%d", i), Version: 1, Patient: &Patient{
			GivenNames: []string{"John"}, FamilyName: "Smith", BirthDate: fmt.Sprintf("%d-%02d-%02d", 1930+i%60, 1+i%12, 1+i%28),
			Addresses: []Address{{Lines: []string{fmt.Sprintf("%d High Street", i+1)}, Postcode: "LS6 2AB"}}}})
	}
	changes = append(changes, Change{PlanID: "PLAN", Version: 1, Patient: &Patient{GivenNames: []string{"John"}, FamilyName: "Smith",
		BirthDate: "1947-10-29", Addresses: []Address{{Lines: []string{"3 Quarry Lane"}, Postcode: "S10 2TN"}}}})
	ix.Apply(changes)
	for _, q := range []Query{
		{GivenName: "John", FamilyName: "Smith", BirthDate: "1948-10-29", Postcode: "S10", Address: "3 Quarry Lane"},
		{GivenName: "John", FamilyName: "Smith", BirthDate: "1948-10-29", Address: "3 Quarry Lane"},
	} {
		r := mustMatch(t, ix, q)
		if len(r.Candidates) == 0 || r.Candidates[0].PlanID != "PLAN" {
			t.Errorf("%+v: %v %+v, want the plan first", q, r.Tier, r.Candidates)
		}
	}
}

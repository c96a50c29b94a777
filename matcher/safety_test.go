package matcher

import (
	"slices"
	"strings"
	"testing"
)

// household is a plan store of 2,000 strangers and one plan holder (given
// names planGiven) at a house she shares with others; with twinGiven set,
// her twin at the same house holds a plan too. The live count is raised to
// 10,000,000 so that the thresholds are those of a national store.
func household(t *testing.T, planGiven, twinGiven []string) *Index {
	t.Helper()
	ix := NewIndex(nil)
	background(ix, 2000)
	mk := func(g []string) *Patient {
		return &Patient{GivenNames: g, FamilyName: "Hughes", BirthDate: "1990-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}},
			Phones:    []string{"0113 496 0000"}}
	}
	ix.Upsert("PLAN-HOLDER", 1, mk(planGiven))
	if twinGiven != nil {
		ix.Upsert("PLAN-TWIN", 1, mk(twinGiven))
	}
	ix.live.Add(10_000_000)
	return ix
}

func householdQuery(given, gender string) Query {
	return Query{GivenName: given, FamilyName: "Hughes", BirthDate: "1990-05-14", Postcode: "LS6 2AB",
		Address: "22 Acacia Ave", Phone: "0113 496 0000", Gender: gender}
}

// TestTwinIsAtMostPossible: a twin without a plan rings with their own,
// correct details — everything the plan holder's record says but the given
// name. Whatever the two names (linked in the nickname table although each
// is a name of its own, one letter apart, sharing the first of two), the
// answer is at most possible; the plan holder ringing is a match.
func TestTwinIsAtMostPossible(t *testing.T) {
	for _, c := range []struct{ plan, twin, gender string }{
		// Linked in the nickname table.
		{"Robert", "William", "male"}, {"William", "Robert", "male"}, {"Peter", "Patrick", "male"},
		{"John", "Ian", "male"}, {"John", "Jack", "male"}, {"John", "Jon", "male"}, {"Jack", "Ian", "male"},
		{"Susan", "Hannah", "female"}, {"Helen", "Eileen", "female"}, {"Maureen", "Mary", "female"},
		{"Rose", "Linda", "female"}, {"Anna", "Hannah", "female"},
		// Real names one letter apart.
		{"Jean", "Joan", "female"}, {"Jane", "June", "female"}, {"Mark", "Mary", ""},
		{"Frances", "Francis", ""}, {"Paula", "Paul", ""}, {"Danielle", "Daniel", ""},
		{"Alexandra", "Alexander", ""}, {"Charlotte", "Charles", ""}, {"Roberta", "Robert", ""},
		{"Michaela", "Michael", ""}, {"Oliver", "Olivia", ""}, {"Louise", "Louis", ""},
		// Names of the plan holders' generations, not registered since 1996.
		{"Gwenda", "Glenda", "female"}, {"Muriel", "Meriel", "female"}, {"Mavis", "Avis", "female"},
		{"Gwyn", "Glyn", "male"}, {"Mervyn", "Melvyn", "male"}, {"Selma", "Velma", "female"}, {"Glenn", "Glynn", "male"},
		// The same first name, a different second.
		{"Mary-Kate", "Mary-Jane", "female"}, {"Jean-Paul", "Jean-Luc", "male"}, {"John Paul", "John Michael", "male"},
	} {
		ix := household(t, strings.Fields(c.plan), nil)
		for _, gender := range []string{c.gender, ""} {
			r := mustMatch(t, ix, householdQuery(c.twin, gender))
			if r.Tier == TierMatch {
				t.Errorf("plan holder %q, twin %q (gender %q) rings: match on the twin's plan (given name %v, score %.1f)",
					c.plan, c.twin, gender, r.Candidates[0].Agreement.GivenName, r.Candidates[0].Score)
			}
		}
		if r := mustMatch(t, ix, householdQuery(c.plan, c.gender)); r.Tier != TierMatch {
			t.Errorf("plan holder %q rings: %v, want match (%+v)", c.plan, r.Tier, r.Candidates)
		}
	}
}

// TestBothTwinsHoldPlans: with both twins' plans held, each twin ringing is
// never a match on the other's.
func TestBothTwinsHoldPlans(t *testing.T) {
	for _, p := range [][2]string{{"John", "Jon"}, {"John", "Ian"}, {"Anna", "Hannah"}, {"Frances", "Francis"},
		{"Paula", "Paul"}, {"Mary-Kate", "Mary-Jane"}, {"Robert", "William"}} {
		ix := household(t, strings.Fields(p[0]), strings.Fields(p[1]))
		for i, g := range p {
			want := [2]string{"PLAN-HOLDER", "PLAN-TWIN"}[i]
			r := mustMatch(t, ix, householdQuery(g, ""))
			if r.Tier == TierMatch && r.Candidates[0].PlanID != want {
				t.Errorf("%q rings: match on %s, the twin's plan", g, r.Candidates[0].PlanID)
			}
			if len(r.Candidates) == 0 || r.Candidates[0].PlanID != want {
				t.Errorf("%q rings: %v %+v; want %s first", g, r.Tier, r.Candidates, want)
			}
		}
	}
}

// TestTypoIsNotATwin: a caller's misspelling of the plan holder's name, not
// itself a name people are given, still anchors a match; a nickname or a
// near spelling with the plan holder's mobile does too.
func TestTypoIsNotATwin(t *testing.T) {
	ix := household(t, []string{"Margaret"}, nil)
	for _, g := range []string{"Margret", "Magaret", "Margaert", "Ma rgaret"} {
		if r := mustMatch(t, ix, householdQuery(g, "")); r.Tier != TierMatch {
			t.Errorf("%q for Margaret: %v, want match (%+v)", g, r.Tier, r.Candidates)
		}
	}
	ix = household(t, []string{"Robert"}, nil)
	ix.Upsert("PLAN-HOLDER", 2, &Patient{GivenNames: []string{"Robert"}, FamilyName: "Hughes", BirthDate: "1990-05-14",
		Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}, Phones: []string{"07700 900456"}})
	q := householdQuery("Bob", "male")
	q.Phone = "07700 900456"
	if r := mustMatch(t, ix, q); r.Tier != TierMatch {
		t.Errorf("Bob with Robert's mobile: %v, want match (%+v)", r.Tier, r.Candidates)
	}
}

// TestRelativesNHSNumber: a carer reads out the plan holder's NHS number
// for her twin, who gives her own name: possible, not a match.
func TestRelativesNHSNumber(t *testing.T) {
	ix := newTestIndex(t)
	for _, q := range []Query{
		{NHSNumber: "9434765919", GivenName: "Mary", FamilyName: "O'Brien", BirthDate: "1941-03-07", Postcode: "SW1A 1AA", Gender: "female"},
		{NHSNumber: "9434765919", GivenName: "Mary", FamilyName: "O'Brien", BirthDate: "1941-03-07"},
	} {
		if r := mustMatch(t, ix, q); r.Tier == TierMatch {
			t.Errorf("%+v: match on %s (%+v)", q, r.Candidates[0].PlanID, r.Candidates[0].Agreement)
		}
	}
	// Her nickname with her NHS number: a twin's own name can be linked to
	// hers in the table as well (Robert and William), so possible, her plan
	// first; with her mobile too, a match.
	q := Query{NHSNumber: "9434765919", GivenName: "Peggy", FamilyName: "O'Brien", BirthDate: "1941-03-07"}
	if r := mustMatch(t, ix, q); r.Tier != TierPossible || r.Candidates[0].PlanID != "UCP-123" {
		t.Errorf("her NHS number with her nickname: %v %+v, want possible with her plan first", r.Tier, r.Candidates)
	}
	q.Phone = "07700 900123"
	if r := mustMatch(t, ix, q); r.Tier != TierMatch {
		t.Errorf("her NHS number, her nickname and her mobile: %v, want match", r.Tier)
	}
	for _, g := range []string{"Margaret", "Margret", ""} {
		q := Query{NHSNumber: "9434765919", GivenName: g, FamilyName: "O'Brien", BirthDate: "1941-03-07"}
		if r := mustMatch(t, ix, q); r.Tier != TierMatch {
			t.Errorf("her NHS number with given name %q: %v, want match", g, r.Tier)
		}
	}
}

// TestTwinsNamedAlike: a twin without a plan rings with their own correct
// details, the household's landline included, where their given name
// agrees with the plan holder's only in a way two people's names can: the
// holder's middle name (James Edward, Edward James), the holder's name with
// the caller's initial run into it (Paula, "Paul A"), a name linked in the
// nickname table read out with the holder's NHS number. At most possible.
func TestTwinsNamedAlike(t *testing.T) {
	for _, c := range []struct {
		plan   []string
		caller string
		nhs    bool
	}{
		{[]string{"James", "Edward"}, "Edward", false}, {[]string{"James", "Edward"}, "Ted", false},
		{[]string{"James", "Edward"}, "Edward James", false}, {[]string{"Mary", "Jane"}, "Jane", false},
		{[]string{"John", "Paul"}, "Paul", false},
		{[]string{"Paula"}, "Paul A", false}, {[]string{"Erica"}, "Eric Alan", false},
		{[]string{"Danielle"}, "Daniel E", false}, {[]string{"Roberta"}, "Robert A", false},
		{[]string{"Marianne"}, "Mary Ann", false},
		{[]string{"Robert"}, "William", true}, {[]string{"Peter"}, "Patrick", true},
		{[]string{"Christopher"}, "Christine", true}, {[]string{"Christopher"}, "C", true},
		{[]string{"James", "Edward"}, "Edward", true},
	} {
		ix := household(t, c.plan, nil)
		ix.Upsert("PLAN-HOLDER", 2, &Patient{NHSNumber: "9434765919", GivenNames: c.plan, FamilyName: "Hughes",
			BirthDate: "1990-05-14", Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}},
			Phones: []string{"0113 496 0000"}})
		q := householdQuery(c.caller, "")
		if c.nhs {
			q.NHSNumber = "9434765919"
		}
		if r := mustMatch(t, ix, q); r.Tier == TierMatch {
			t.Errorf("plan holder %v, twin %q rings (NHS number read out: %v): match (given name %v, score %.1f)",
				c.plan, c.caller, c.nhs, r.Candidates[0].Agreement.GivenName, r.Candidates[0].Score)
		}
	}
	// The plan holder ringing with the name on the plan is still a match.
	if r := mustMatch(t, household(t, []string{"James", "Edward"}, nil), householdQuery("James", "")); r.Tier != TierMatch {
		t.Errorf("James Edward rings as James: %v, want match", r.Tier)
	}
}

// TestSharedNumberIsNotPersonal: only a UK mobile is a person's own; a
// number a household may share (0800, 0845, 03, VoIP, a landline abroad)
// does not make a twin's nickname a match, as a mobile would.
func TestSharedNumberIsNotPersonal(t *testing.T) {
	for _, phone := range []string{"0845 496 0000", "0800 496 0000", "0300 496 0000", "056 1234 5678", "+353 1 496 0000", "07000 123456"} {
		ix := household(t, []string{"Christine"}, nil)
		ix.Upsert("PLAN-HOLDER", 2, &Patient{GivenNames: []string{"Christine"}, FamilyName: "Hughes", BirthDate: "1990-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}, Phones: []string{phone}})
		q := householdQuery("Chris", "")
		q.Phone = phone
		if r := mustMatch(t, ix, q); r.Tier == TierMatch {
			t.Errorf("Chris on the shared number %s: match on Christine's plan (phone %v)", phone, r.Candidates[0].Agreement.Phone)
		}
	}
	for _, phone := range []string{"07700 900456", "+44 7700 900456"} {
		ix := household(t, []string{"Christine"}, nil)
		ix.Upsert("PLAN-HOLDER", 2, &Patient{GivenNames: []string{"Christine"}, FamilyName: "Hughes", BirthDate: "1990-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}, Phones: []string{phone}})
		q := householdQuery("Chris", "female")
		q.Phone = phone
		if r := mustMatch(t, ix, q); r.Tier != TierMatch {
			t.Errorf("Chris on Christine's mobile %s: %v, want match", phone, r.Tier)
		}
	}
}

// TestNicknamesWhole: no nickname's formal names are cut short by
// maxFormals: Chris stands for Christopher and Christine both, so that
// twins Christopher and Christine, both holding plans and sharing the
// family mobile, are not told apart by "Chris" (possible), and a caller
// giving only "Chris" and the family name is not answered none.
func TestNicknamesWhole(t *testing.T) {
	full := map[string]map[string]bool{} // name → itself and every formal name the table gives it
	add := func(name, formal string) {
		if full[name] == nil {
			full[name] = map[string]bool{name: true}
		}
		full[name][formal] = true
	}
	for i, line := range strings.Split(nicknamesCSV, "\n") {
		formal, rest, ok := strings.Cut(strings.TrimSpace(line), ",has_nickname,")
		if i == 0 || !ok || formal == "" || rest == "" {
			continue
		}
		add(formal, formal)
		add(rest, formal)
	}
	for name, want := range full {
		if got := len(formalsOf(name)); got != len(want) {
			t.Errorf("%s: %d formal names kept of %d", name, got, len(want))
		}
	}
	for _, f := range []string{"christopher", "christine", "kristopher"} {
		if !slices.Contains(formalsOf("chris"), f) {
			t.Errorf("chris does not stand for %s: %v", f, formalsOf("chris"))
		}
	}
	mobile := "07700 900456"
	ix := household(t, []string{"Christine"}, []string{"Christopher"})
	for _, id := range []string{"PLAN-HOLDER", "PLAN-TWIN"} {
		g := map[string]string{"PLAN-HOLDER": "Christine", "PLAN-TWIN": "Christopher"}[id]
		ix.Upsert(id, 2, &Patient{GivenNames: []string{g}, FamilyName: "Hughes", BirthDate: "1990-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}, Phones: []string{mobile}})
	}
	q := householdQuery("Chris", "")
	q.Phone = mobile
	if r := mustMatch(t, ix, q); r.Tier == TierMatch {
		t.Errorf("Chris on the twins' shared mobile: match on %s", r.Candidates[0].PlanID)
	}
}

// TestSwappedNamesake: Thomas Henry, not a plan holder, shares a birthday
// with Henry Thomas, who is: names the other way round anchor a match only
// with the home (or a mobile) to tell them apart.
func TestSwappedNamesake(t *testing.T) {
	ix := NewIndex(nil)
	background(ix, 2000)
	ix.Upsert("PLAN-HENRY-THOMAS", 1, &Patient{GivenNames: []string{"Henry"}, FamilyName: "Thomas", BirthDate: "1950-01-20", Gender: "male",
		Addresses: []Address{{Lines: []string{"9 High Street"}, Postcode: "SA1 1NW"}}})
	for _, q := range []Query{
		{GivenName: "Thomas", FamilyName: "Henry", BirthDate: "1950-01-20", Gender: "male"},
		{GivenName: "Thomas", FamilyName: "Henry", BirthDate: "1950-01-20", Postcode: "SA1"},
	} {
		if r := mustMatch(t, ix, q); r.Tier == TierMatch {
			t.Errorf("%+v: match on %s (%+v)", q, r.Candidates[0].PlanID, r.Candidates[0].Agreement)
		}
	}
	q := Query{GivenName: "Thomas", FamilyName: "Henry", BirthDate: "1950-01-20", Postcode: "SA1 1NW"}
	if r := mustMatch(t, ix, q); r.Tier != TierMatch {
		t.Errorf("names the other way round, at his home: %v, want match", r.Tier)
	}
}

// TestParentIsNotASlip: John Hughes and his son John Hughes, born on the
// same day and month thirty years apart, at one house: the son ringing is
// not a match on his father's plan. A slip of one in the year's tens digit
// still is.
func TestParentIsNotASlip(t *testing.T) {
	ix := NewIndex(nil)
	background(ix, 2000)
	ix.Upsert("PLAN-FATHER", 1, &Patient{GivenNames: []string{"John"}, FamilyName: "Hughes", BirthDate: "1952-06-15", Gender: "male",
		Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}, Phones: []string{"0113 496 0000"}})
	q := Query{GivenName: "John", FamilyName: "Hughes", BirthDate: "1982-06-15", Gender: "male", Postcode: "LS6 2AB", Address: "22 Acacia Ave", Phone: "0113 496 0000"}
	if r := mustMatch(t, ix, q); r.Tier == TierMatch {
		t.Errorf("son rings: match on %s (%+v)", r.Candidates[0].PlanID, r.Candidates[0].Agreement)
	}
	q.BirthDate = "1962-06-15"
	if r := mustMatch(t, ix, q); r.Tier != TierMatch || r.Candidates[0].Agreement.BirthDate != OneDigit {
		t.Errorf("1962 for 1952: %v %+v, want a match with a one-digit slip", r.Tier, r.Candidates)
	}
}

// nationalIndex is 2,000 strangers and the plans given, with the live count
// of a national store.
func nationalIndex(plans map[string]*Patient) *Index {
	ix := NewIndex(nil)
	background(ix, 2000)
	for id, p := range plans {
		ix.Upsert(id, 1, p)
	}
	ix.live.Add(10_000_000)
	return ix
}

// TestHouseholdFactsDoNotMakeAMatch: people who share a building, a street
// or a phone with a plan holder, or a name with one elsewhere, ringing with
// their own details, are at most possible: another surname in the same care
// home, a namesake at another house on the same street, a spouse on the shared mobile with a unisex nickname and a
// slipped birth date, a namesake at the same house number and street name
// in another town, and a caller who gives a name with the NHS number of a
// plan that records none. The plan holder ringing is still a match.
func TestHouseholdFactsDoNotMakeAMatch(t *testing.T) {
	careHome := &Patient{GivenNames: []string{"Mary"}, FamilyName: "Smith", Gender: "female", BirthDate: "1931-03-12",
		Addresses: []Address{{Lines: []string{"Rosewood Care Home", "40 Park Road"}, Postcode: "LS6 3QT"}}, Phones: []string{"0113 496 1111"}}
	namesake := &Patient{GivenNames: []string{"Mohammed"}, FamilyName: "Hussain", BirthDate: "1955-01-01",
		Addresses: []Address{{Lines: []string{"14 Carlisle Road"}, Postcode: "BD8 7QT"}}}
	couple := &Patient{GivenNames: []string{"Patricia"}, FamilyName: "Hughes", Gender: "female", BirthDate: "1948-06-16",
		Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}, Phones: []string{"07700 900777"}}
	town := &Patient{GivenNames: []string{"John"}, FamilyName: "Smith", Gender: "male", BirthDate: "1948-07-02",
		Addresses: []Address{{Lines: []string{"1 Church Road"}, Postcode: "LS6 3QT"}}}
	noGiven := &Patient{NHSNumber: "9434765919", FamilyName: "O'Brien", BirthDate: "1941-03-07",
		Addresses: []Address{{Lines: []string{"14 Elm Road"}, Postcode: "SW1A 1AA"}}}
	household := func(given []string, dob, gender, mobile string) *Patient {
		p := &Patient{NHSNumber: "9434765919", GivenNames: given, FamilyName: "Hughes", BirthDate: dob, Gender: gender,
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}, Phones: []string{"0113 496 0000"}}
		if mobile != "" {
			p.Phones = append(p.Phones, mobile)
		}
		return p
	}
	atHome := func(given, dob, gender, phone string) Query {
		return Query{GivenName: given, FamilyName: "Hughes", BirthDate: dob, Gender: gender, Postcode: "LS6 2AB",
			Address: "22 Acacia Ave", Phone: phone}
	}
	flat2 := &Patient{GivenNames: []string{"John"}, FamilyName: "Smith", Gender: "male", BirthDate: "1950-04-11",
		Addresses: []Address{{Lines: []string{"Flat 2", "14 Elm Road"}, Postcode: "SW1A 1AA"}}}
	house2 := &Patient{GivenNames: []string{"John"}, FamilyName: "Smith", Gender: "male", BirthDate: "1950-04-11",
		Addresses: []Address{{Lines: []string{"2 Elm Road"}, Postcode: "SW1A 1AA"}}}
	home := func(line, phone string) *Patient {
		return &Patient{GivenNames: []string{"Mary"}, FamilyName: "Smith", Gender: "female", BirthDate: "1931-03-12",
			Addresses: []Address{{Lines: []string{line, "40 Park Road"}, Postcode: "LS6 3QT"}}, Phones: []string{phone}}
	}
	johnAt := func(line string) *Patient {
		return &Patient{GivenNames: []string{"John"}, FamilyName: "Smith", Gender: "male", BirthDate: "1950-04-11",
			Addresses: []Address{{Lines: []string{line}, Postcode: "SW1A 1AA"}}}
	}
	john := func(dob, address string) Query {
		return Query{GivenName: "John", FamilyName: "Smith", Gender: "male", BirthDate: dob, Postcode: "SW1A 1AA", Address: address}
	}
	moved := &Patient{GivenNames: []string{"John"}, FamilyName: "Smith", Gender: "male", BirthDate: "1950-04-11",
		Addresses: []Address{{Lines: []string{"14 Elm Road"}, Postcode: "SW1A 1AA"}, {Lines: []string{"22 Mill Lane"}, Postcode: "LS1 4AP"}}}
	movedFlat := &Patient{GivenNames: []string{"John"}, FamilyName: "Smith", Gender: "male", BirthDate: "1950-04-11",
		Addresses: []Address{{Lines: []string{"5 Oak Lane"}, Postcode: "LS1 4AP"}, {Lines: []string{"Flat 2", "14 Elm Road"}, Postcode: "SW1A 1AA"}}}
	peter := household([]string{"Peter"}, "2015-05-14", "male", "07700 900456")
	james := household([]string{"James", "Edward"}, "2015-05-14", "male", "07700 900456")
	for _, c := range []struct {
		name  string
		plan  *Patient
		q     Query
		match bool // the plan holder's own call: a match
	}{
		// A child's plan records a parent's mobile, which the child's
		// twin shares: not the child's own.
		{"child's twin on the parent's mobile", peter, atHome("Patrick", "2015-05-14", "male", "07700 900456"), false},
		{"child's twin by the holder's middle name", james, atHome("Edward", "2015-05-14", "male", "07700 900456"), false},
		{"child's twin with the holder's NHS number", peter, Query{NHSNumber: "9434765919", GivenName: "Patrick", FamilyName: "Hughes",
			BirthDate: "2015-05-14", Gender: "male", Postcode: "LS6 2AB", Phone: "07700 900456"}, false},
		{"the child, on the parent's mobile", peter, atHome("Peter", "2015-05-14", "male", "07700 900456"), true},
		// Names of older generations are names, not typos of each other.
		{"Lillian, twin of Gillian", household([]string{"Gillian"}, "1960-05-14", "female", ""), atHome("Lillian", "1960-05-14", "female", "0113 496 0000"), false},
		{"Lyn, twin of Glyn", household([]string{"Glyn"}, "1960-05-14", "", ""), atHome("Lyn", "1960-05-14", "", "0113 496 0000"), false},
		// A namesake a few streets away in the same district.
		{"namesake at another full postcode of the district", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 9ZZ"}, false},
		{"namesake at the next postcode, another street", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 7QU", Address: "5 Lumb Lane"}, false},
		{"the holder, postcode misremembered, his house", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 9ZZ", Address: "14 Carlisle Road"}, true},
		{"the holder, postcode mistyped", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 7QU"}, true},
		// In a care home postcode, address and phone are every
		// resident's: they do not make up for a slipped birth date or a
		// surname not the holder's.
		{"care home namesake, birth date a day out", careHome, Query{GivenName: "Mary", FamilyName: "Smith", BirthDate: "1931-03-13",
			Postcode: "LS6 3QT", Address: "40 Park Road", Phone: "0113 496 1111"}, false},
		{"care home namesake, a year out", careHome, Query{GivenName: "Mary", FamilyName: "Smith", BirthDate: "1932-03-12",
			Postcode: "LS6 3QT", Address: "Rosewood Care Home, 40 Park Road"}, false},
		{"care home, Mary Smyth", careHome, Query{GivenName: "Mary", FamilyName: "Smyth", BirthDate: "1931-03-12",
			Postcode: "LS6 3QT", Address: "40 Park Road", Phone: "0113 496 1111"}, false},
		{"care home, Mary, no surname, a day out", careHome, Query{GivenName: "Mary", BirthDate: "1931-03-13",
			Postcode: "LS6 3QT", Address: "40 Park Road"}, false},
		{"the holder, street misspelt, postcode mistyped", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 7QU", Address: "14 Carlise Road"}, true},
		// Flats of one building: Flat 2 and Flat 9 at 14 Elm Road.
		{"namesake in another flat, birth date a day out", flat2, Query{GivenName: "John", FamilyName: "Smith", Gender: "male",
			BirthDate: "1950-04-12", Postcode: "SW1A 1AA", Address: "Flat 9, 14 Elm Road"}, false},
		{"the holder in his flat, birth date a day out", flat2, Query{GivenName: "John", FamilyName: "Smith", Gender: "male",
			BirthDate: "1950-04-12", Postcode: "SW1A 1AA", Address: "Flat 2, 14 Elm Road"}, true},
		{"the holder, no flat given", flat2, Query{GivenName: "John", FamilyName: "Smith", Gender: "male",
			BirthDate: "1950-04-11", Postcode: "SW1A 1AA", Address: "14 Elm Road"}, true},
		{"namesake two doors along, single digits", house2, Query{GivenName: "John", FamilyName: "Smith", Gender: "male",
			BirthDate: "1950-04-11", Postcode: "SW1A 1AA", Address: "9 Elm Road"}, false},
		// The fourth review: next door, flats written other ways, care
		// homes named other ways and their mobiles, another street
		// without a postcode, 17-year-olds.
		{"namesake next door, same side, a year apart", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1956-01-01", Postcode: "BD8 7QT", Address: "16 Carlisle Road"}, false},
		{"namesake in the other half of 14a, a day out", johnAt("14a Elm Road"), john("1950-04-12", "14b Elm Road"), false},
		{"namesake in flat 9, written 9/14", flat2, john("1950-04-12", "9/14 Elm Road"), false},
		{"namesake in flat 9, flat after the street", flat2, john("1950-04-12", "14 Elm Road, Flat 9"), false},
		{"namesake in the next flat", flat2, john("1950-04-12", "Flat 3, 14 Elm Road"), false},
		{"namesake in Flat B of Flat A's house", johnAt("Flat A, 14 Elm Road"), john("1950-04-12", "Flat B, 14 Elm Road"), false},
		{"the holder, flat as 2/14, postcode mistyped", flat2, Query{GivenName: "John", FamilyName: "Smith", Gender: "male",
			BirthDate: "1950-04-11", Postcode: "SW1A 1AB", Address: "2/14 Elm Road"}, true},
		{"care home named in the plural", home("Rosewood Care Homes", "0113 496 1111"), Query{GivenName: "Mary", FamilyName: "Smith",
			BirthDate: "1931-03-13", Postcode: "LS6 3QT", Address: "40 Park Road", Phone: "0113 496 1111"}, false},
		{"care home as one word, Mary Smyth", home("Rosewood Carehome", "0113 496 1111"), Query{GivenName: "Mary", FamilyName: "Smyth",
			BirthDate: "1931-03-12", Postcode: "LS6 3QT", Address: "40 Park Road"}, false},
		{"co-resident on the home's mobile", home("Rosewood Care Home", "07700 900111"), Query{GivenName: "Mary", FamilyName: "Jones",
			BirthDate: "1931-03-12", Postcode: "LS6 3QT", Address: "Rosewood Care Home, 40 Park Road", Phone: "07700 900111"}, false},
		{"co-resident on the home's mobile, a day out", home("Rosewood Care Home", "07700 900111"), Query{GivenName: "Mary",
			FamilyName: "Smith", BirthDate: "1931-03-13", Postcode: "LS6 3QT", Phone: "07700 900111"}, false},
		{"namesake on another street, no postcode", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Address: "5 Lumb Lane, Bradford"}, false},
		{"namesake at the next postcode, house 15 on another street", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 7QU", Address: "15 Lumb Lane"}, false},
		{"namesake at the next postcode, '5, Lumb Lane'", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 7QU", Address: "5, Lumb Lane"}, false},
		{"17-year-old's twin on the parent's mobile", household([]string{"Peter"}, "2009-05-14", "male", "07700 900456"),
			atHome("Patrick", "2009-05-14", "male", "07700 900456"), false},
		// Two spellings of one name are the holder's.
		{"Graeme with his NHS number, spelt Graham", household([]string{"Graeme"}, "1950-05-14", "male", ""),
			Query{NHSNumber: "9434765919", GivenName: "Graham", FamilyName: "Hughes", BirthDate: "1950-05-14"}, true},
		{"Eamonn at home, spelt Eamon", household([]string{"Eamonn"}, "1950-05-14", "male", ""), atHome("Eamon", "1950-05-14", "male", "0113 496 0000"), true},
		{"Lynne at home, spelt Lynn", household([]string{"Lynne"}, "1950-05-14", "female", ""), atHome("Lynn", "1950-05-14", "female", "0113 496 0000"), true},
		{"Louise's twin Louis", household([]string{"Louise"}, "1950-05-14", "", ""), atHome("Louis", "1950-05-14", "", "0113 496 0000"), false},
		// The fifth review.
		{"co-resident on the mobile of a supported-living home", home("Rosewood Supported Living", "07700 900111"), Query{GivenName: "Mary",
			FamilyName: "Jones", BirthDate: "1931-03-12", Postcode: "LS6 3QT", Address: "Rosewood Supported Living, 40 Park Road", Phone: "07700 900111"}, false},
		{"sheltered housing, co-resident a day out", home("Rosewood Sheltered Housing", "0113 496 1111"), Query{GivenName: "Mary", FamilyName: "Smith",
			BirthDate: "1931-03-13", Postcode: "LS6 3QT", Address: "40 Park Road", Phone: "0113 496 1111"}, false},
		{"EMI unit, Mary Smyth", home("Rosewood EMI Unit", "0113 496 1111"), Query{GivenName: "Mary", FamilyName: "Smyth",
			BirthDate: "1931-03-12", Postcode: "LS6 3QT", Address: "40 Park Road", Phone: "0113 496 1111"}, false},
		{"twin Simon of Simone, gender not given", household([]string{"Simone"}, "1960-05-14", "female", ""), atHome("Simon", "1960-05-14", "", "0113 496 0000"), false},
		{"twin Justin reads Justine's NHS number", household([]string{"Justine"}, "1960-05-14", "female", ""), Query{NHSNumber: "9434765919",
			GivenName: "Justin", FamilyName: "Hughes", BirthDate: "1960-05-14"}, false},
		{"twin Ross of Ros", household([]string{"Ros"}, "1960-05-14", "", ""), atHome("Ross", "1960-05-14", "", "0113 496 0000"), false},
		{"spouse Jan on Jane's mobile, a day out", household([]string{"Jane"}, "1950-05-14", "", "07700 900777"), atHome("Jan", "1950-05-15", "", "07700 900777"), false},
		{"namesake next door, town after the street", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain", BirthDate: "1955-01-01",
			Postcode: "BD8 7QT", Address: "22 Carlisle Road Bradford"}, false},
		{"namesake two doors along, postcode in the line", house2, john("1950-04-11", "9 Elm Road SW1A 1AA"), false},
		{"namesake in flat 9, no comma before Flat", flat2, john("1950-04-12", "14 Elm Road Flat 9"), false},
		{"Sarah with her NHS number, as Sara", household([]string{"Sarah"}, "1950-05-14", "female", ""), Query{NHSNumber: "9434765919",
			GivenName: "Sara", FamilyName: "Hughes", BirthDate: "1950-05-14"}, true},
		{"Ann at home, spelt Anne", household([]string{"Ann"}, "1950-05-14", "female", ""), atHome("Anne", "1950-05-14", "female", "0113 496 0000"), true},
		{"Catherine at home, spelt Katherine", household([]string{"Catherine"}, "1950-05-14", "female", ""), atHome("Katherine", "1950-05-14", "female", "0113 496 0000"), true},
		{"Geoffrey with his NHS number, spelt Jeffrey", household([]string{"Geoffrey"}, "1950-05-14", "male", ""), Query{NHSNumber: "9434765919",
			GivenName: "Jeffrey", FamilyName: "Hughes", BirthDate: "1950-05-14"}, true},
		{"Brian at home, spelt Bryan", household([]string{"Brian"}, "1950-05-14", "male", ""), atHome("Bryan", "1950-05-14", "male", "0113 496 0000"), true},
		{"the holder at 4 Hospice Lane, a day out", johnAt("4 Hospice Lane"), john("1950-04-12", "4 Hospice Lane"), true},
		{"the holder, town after the street, a day out", johnAt("14 Elm Road"), john("1950-04-12", "14 Elm Road London"), true},
		// The sixth review.
		{"twin Mary-Jane reads Mary-Kate's NHS number", household([]string{"Mary-Kate"}, "1990-05-14", "female", ""),
			Query{NHSNumber: "9434765919", GivenName: "Mary-Jane", FamilyName: "Hughes", BirthDate: "1990-05-14"}, false},
		{"twin Ann Louise of Anne Marie, at home", household([]string{"Anne", "Marie"}, "1990-05-14", "female", ""),
			atHome("Ann Louise", "1990-05-14", "female", "0113 496 0000"), false},
		{"twin Mary-Jane typed Marry-Jane", household([]string{"Mary-Kate"}, "1990-05-14", "female", ""),
			atHome("Marry-Jane", "1990-05-14", "female", "0113 496 0000"), false},
		{"namesake in Flat 9 of a named block, a day out", johnAt("Flat 2, Rose Court, Elm Road"), john("1950-04-12", "Flat 9, Rose Court, Elm Road"), false},
		{"namesake upstairs, flats named by floor", johnAt("Ground Floor Flat, 14 Elm Road"), john("1950-04-12", "First Floor Flat, 14 Elm Road"), false},
		{"namesake at 22 Oak Street in the holder's postcode; old house was 22", moved, john("1950-04-12", "22 Oak Street"), false},
		{"namesake at the next postcode, 22 Lumb Lane", moved, Query{GivenName: "John", FamilyName: "Smith", Gender: "male",
			BirthDate: "1950-04-11", Postcode: "SW1A 1AB", Address: "22 Lumb Lane"}, false},
		{"namesake at '22 Elm' in the previous postcode, a day out", movedFlat, john("1950-04-12", "22 Elm"), false},
		{"Thomas Henry a day out in Henry Thomas's postcode", &Patient{GivenNames: []string{"Henry"}, FamilyName: "Thomas", BirthDate: "1950-01-20",
			Addresses: []Address{{Lines: []string{"9 High Street"}, Postcode: "SA1 1NW"}}},
			Query{GivenName: "Thomas", FamilyName: "Henry", BirthDate: "1950-01-21", Postcode: "SA1 1NW"}, false},
		{"care home, maiden name", &Patient{GivenNames: []string{"Mary"}, FamilyName: "Hughes", BirthDate: "1931-03-12",
			OtherNames: []Name{{FamilyName: "Smith", Use: "maiden"}},
			Addresses:  []Address{{Lines: []string{"Rosewood Care Home", "40 Park Road"}, Postcode: "LS6 3QT"}}},
			Query{GivenName: "Mary", FamilyName: "Smith", BirthDate: "1931-03-12", Postcode: "LS6 3QT", Address: "Rosewood Care Home, 40 Park Road"}, true},
		{"gender other, record female", household([]string{"Mary"}, "1950-05-14", "female", ""), atHome("Mary", "1950-05-14", "other", "0113 496 0000"), true},
		{"the holder, moved, old house number, new postcode", moved, john("1950-04-11", "14 Elm Road"), true},
		// The seventh review: brothers named Mohammed, 1 January.
		{"brother Mohammed, 1 January three years on, at home", &Patient{GivenNames: []string{"Mohammed", "Ali"}, FamilyName: "Khan",
			BirthDate: "1955-01-01", Gender: "male", Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}},
			Query{GivenName: "Mohammed", FamilyName: "Khan", BirthDate: "1958-01-01", Gender: "male", Postcode: "BD8 7QT", Address: "22 Acacia Ave"}, false},
		{"brother Mohammed Imran, plan records only Mohammed, 1 January", &Patient{GivenNames: []string{"Mohammed"}, FamilyName: "Khan",
			BirthDate: "1955-01-01", Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}},
			Query{GivenName: "Mohammed Imran", FamilyName: "Khan", BirthDate: "1956-01-01", Postcode: "BD8 7QT"}, false},
		{"twin of Mohammed Ali gives only Mohammed", &Patient{GivenNames: []string{"Mohammed", "Ali"}, FamilyName: "Khan",
			BirthDate: "1960-05-14", Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}, Phones: []string{"01274 496000"}},
			Query{GivenName: "Mohammed", FamilyName: "Khan", BirthDate: "1960-05-14", Postcode: "BD8 7QT", Address: "22 Acacia Ave", Phone: "01274 496000"}, false},
		{"namesake in the district, outward code only, 1 January", namesake,
			Query{GivenName: "Mohammed", FamilyName: "Hussain", BirthDate: "1955-01-01", Postcode: "BD8"}, false},
		{"Mohammed at home, typed Muhammad", &Patient{GivenNames: []string{"Mohammed"}, FamilyName: "Khan",
			BirthDate: "1960-05-14", Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}},
			Query{GivenName: "MUHAMMAD", FamilyName: "KHAN", BirthDate: "14/05/1960", Postcode: "bd87qt", Address: "22 ACACIA AVE"}, true},
		{"John Paul Smith given as 'John Jnr'", &Patient{GivenNames: []string{"John", "Paul"}, FamilyName: "Smith",
			BirthDate: "1980-04-11", Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "LS6 2AB"}}},
			Query{GivenName: "Mr John Jnr", FamilyName: "Smith", BirthDate: "1980-04-11", Postcode: "LS6 2AB", Address: "22 Acacia Ave"}, true},
		{"the holder born 1 January, at home", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain",
			BirthDate: "1955-01-01", Postcode: "BD8 7QT", Address: "14 Carlisle Road"}, true},
		// The eighth review.
		{"twin Mohammed I. of Mohammed Ali, at home", &Patient{GivenNames: []string{"Mohammed", "Ali"}, FamilyName: "Khan", BirthDate: "1960-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}, Phones: []string{"01274 496000"}},
			Query{GivenName: "Mohammed I", FamilyName: "Khan", BirthDate: "1960-05-14", Postcode: "BD8 7QT", Address: "22 Acacia Ave", Phone: "01274 496000"}, false},
		{"twin Mary J. of Mary-Kate, at home", household([]string{"Mary-Kate"}, "1990-05-14", "female", ""),
			atHome("Mary J", "1990-05-14", "female", "0113 496 0000"), false},
		{"twin Mohammed Imran, plan records only Mohammed, at home", &Patient{GivenNames: []string{"Mohammed"}, FamilyName: "Khan", BirthDate: "1960-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}, Phones: []string{"01274 496000"}},
			Query{GivenName: "Mohammed Imran", FamilyName: "Khan", BirthDate: "1960-05-14", Postcode: "BD8 7QT", Address: "22 Acacia Ave", Phone: "01274 496000"}, false},
		{"twin of Mohammed Ali typed Mohmmed", &Patient{GivenNames: []string{"Mohammed", "Ali"}, FamilyName: "Khan", BirthDate: "1960-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}, Phones: []string{"01274 496000"}},
			Query{GivenName: "Mohmmed", FamilyName: "Khan", BirthDate: "1960-05-14", Postcode: "BD8 7QT", Address: "22 Acacia Ave", Phone: "01274 496000"}, false},
		{"twin Abdul of Abdul Karim, at home", &Patient{GivenNames: []string{"Abdul", "Karim"}, FamilyName: "Khan", BirthDate: "1960-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}, Phones: []string{"01274 496000"}},
			Query{GivenName: "Abdul", FamilyName: "Khan", BirthDate: "1960-05-14", Postcode: "BD8 7QT", Address: "22 Acacia Ave", Phone: "01274 496000"}, false},
		{"namesake in the 1st Floor Flat", johnAt("Ground Floor Flat, 14 Elm Road"), john("1950-04-11", "1st Floor Flat, 14 Elm Road"), false},
		{"namesake on the First Floor, no 'Flat', a day out", johnAt("Ground Floor Flat, 14 Elm Road"), john("1950-04-12", "First Floor, 14 Elm Road"), false},
		{"namesake in the Garden Flat, a day out", johnAt("Ground Floor Flat, 14 Elm Road"), john("1950-04-12", "Garden Flat, 14 Elm Road"), false},
		{"namesake in Flat 9 of 14a", flat2, john("1950-04-11", "Flat 9, 14a Elm Road"), false},
		{"swapped names with the NHS number, at home", &Patient{NHSNumber: "9434765919", GivenNames: []string{"Brooke"}, FamilyName: "Adamson",
			BirthDate: "1948-07-25", Addresses: []Address{{Lines: []string{"3 Acacia Avenue"}, Postcode: "TS3 6PS"}}},
			Query{NHSNumber: "9434765919", GivenName: "Adamson", FamilyName: "Brooke", BirthDate: "1948-07-25", Postcode: "TS3 6PS"}, true},
		{"a 1 January typed for the 9th", &Patient{GivenNames: []string{"Sophie"}, FamilyName: "Hart", BirthDate: "1961-01-09",
			Addresses: []Address{{Lines: []string{"3 Acacia Avenue"}, Postcode: "DA16 3BG"}}},
			Query{GivenName: "Sophie", FamilyName: "Hart", BirthDate: "1961-01-01", Postcode: "DA16 3BG"}, true},
		{"Mohammed Ali on his own mobile, first name only", &Patient{GivenNames: []string{"Mohammed", "Ali"}, FamilyName: "Khan", BirthDate: "1960-05-14",
			Addresses: []Address{{Lines: []string{"22 Acacia Avenue"}, Postcode: "BD8 7QT"}}, Phones: []string{"07700 900321"}},
			Query{GivenName: "Mohammed", FamilyName: "Khan", BirthDate: "1960-05-14", Postcode: "BD8 7QT", Phone: "07700 900321"}, true},
		{"care home, another surname", careHome, Query{GivenName: "Mary", FamilyName: "Jones", Gender: "female", BirthDate: "1931-03-12",
			Postcode: "LS6 3QT", Address: "40 Park Road", Phone: "0113 496 1111"}, false},
		{"care home, the resident", careHome, Query{GivenName: "Mary", FamilyName: "Smith", BirthDate: "1931-03-12",
			Postcode: "LS6 3QT", Address: "40 Park Road"}, true},
		{"namesake next door", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain", BirthDate: "1955-01-01",
			Postcode: "BD8 7QT", Address: "22 Carlisle Road"}, false},
		{"namesake a year apart next door", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain", BirthDate: "1956-01-01",
			Postcode: "BD8 7QT", Address: "22 Carlisle Road"}, false},
		{"the namesake's plan holder", namesake, Query{GivenName: "Mohammed", FamilyName: "Hussain", BirthDate: "1955-01-01",
			Postcode: "BD8 7QT", Address: "14 Carlisle Road"}, true},
		{"spouse on the shared mobile", couple, Query{GivenName: "Pat", FamilyName: "Hughes", BirthDate: "1948-06-15",
			Postcode: "LS6 2AB", Phone: "07700 900777"}, false},
		{"Pat on her mobile, her birth date", couple, Query{GivenName: "Pat", FamilyName: "Hughes", BirthDate: "1948-06-16",
			Postcode: "LS6 2AB", Phone: "07700 900777"}, true},
		{"same house and street, another town", town, Query{GivenName: "John", FamilyName: "Smith", Gender: "male", BirthDate: "1948-07-02",
			Postcode: "CF14 3NB", Address: "1 Church Road, Cardiff"}, false},
		{"a name where the plan has none", noGiven, Query{NHSNumber: "9434765919", GivenName: "Mary", FamilyName: "O'Brien",
			BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}, false},
		{"no name where the plan has none", noGiven, Query{NHSNumber: "9434765919", FamilyName: "O'Brien",
			BirthDate: "1941-03-07", Postcode: "SW1A 1AA"}, true},
	} {
		ix := nationalIndex(map[string]*Patient{"PLAN": c.plan})
		r := mustMatch(t, ix, c.q)
		switch {
		case !c.match && r.Tier == TierMatch:
			t.Errorf("%s: match (score %.1f, %+v)", c.name, r.Candidates[0].Score, r.Candidates[0].Agreement)
		case c.match && r.Tier != TierMatch:
			t.Errorf("%s: %v %+v, want match", c.name, r.Tier, r.Candidates)
		case len(r.Candidates) == 0 || r.Candidates[0].PlanID != "PLAN":
			t.Errorf("%s: %v %+v, want the plan first", c.name, r.Tier, r.Candidates)
		}
	}
}

package bench

import (
	"strconv"
	"strings"

	"github.com/planflag/planflag/matcher"
)

// Caller errors: what a caller, or a call handler typing, does to true
// details. Each is applied only where it can be (a maiden name only for
// someone who has one); Kind names what was applied.
var memberErrors = []struct {
	kind   string
	weight float64
}{
	{"clean", 14}, {"nickname", 8}, {"given-typo", 6}, {"family-typo", 8}, {"family-variant", 5},
	{"dob-day-month-swap", 5}, {"dob-typo", 5}, {"dob-year-off", 3}, {"missing-fields", 8},
	{"postcode-outward-only", 5}, {"postcode-typo", 4}, {"old-postcode", 4}, {"swapped-names", 3},
	{"initial-only", 3}, {"middle-name", 3}, {"maiden-name", 3}, {"other-phone", 4}, {"formatting", 6},
}

var nonMemberKinds = []struct {
	kind   string
	weight float64
}{
	{"household-member", 30}, {"twin", 10}, {"namesake", 25}, {"withdrawn", 10}, {"stranger", 25},
}

// keyboard neighbours on a UK QWERTY keyboard, for typos.
var keyboard = map[byte]string{
	'q': "wa", 'w': "qes", 'e': "wrd", 'r': "etf", 't': "ryg", 'y': "tuh", 'u': "yij", 'i': "uok", 'o': "ipl", 'p': "ol",
	'a': "qsz", 's': "awdz", 'd': "sefx", 'f': "drgc", 'g': "fthv", 'h': "gyjb", 'j': "hukn", 'k': "jilm", 'l': "kop",
	'z': "asx", 'x': "zsdc", 'c': "xdfv", 'v': "cfgb", 'b': "vghn", 'n': "bhjm", 'm': "njk",
}

// queries draws the caller queries of a data set.
func (g *gen) queries(d *Dataset) []LabeledQuery {
	var live, withdrawn, twinsNoPlan, housemates []*Person
	for _, p := range d.Holders {
		if p.Withdrawn {
			withdrawn = append(withdrawn, p)
		} else {
			live = append(live, p)
		}
	}
	for _, p := range d.People {
		if p.PlanID != "" {
			continue
		}
		hasHolder := false
		for _, m := range p.Household.Members {
			hasHolder = hasHolder || (m.PlanID != "" && !m.Withdrawn)
		}
		if p.Twin != nil && p.Twin.PlanID != "" && !p.Twin.Withdrawn {
			twinsNoPlan = append(twinsNoPlan, p)
		} else if hasHolder {
			housemates = append(housemates, p)
		}
	}
	qs := make([]LabeledQuery, 0, g.cfg.Queries)
	for len(qs) < g.cfg.Queries {
		if g.chance(g.cfg.MemberShare) {
			p := live[g.rng.IntN(len(live))]
			q, kind := g.memberQuery(p)
			worded, extras := g.present(p, q)
			qs = append(qs, LabeledQuery{Query: worded, Expect: p.PlanID, Kind: kind, Extras: extras, Plain: plain(q, extras),
				AtHome: p.Household.Home})
			continue
		}
		var p *Person
		kind := pick(g, nonMemberKinds)
		switch kind {
		case "household-member":
			p = drawFrom(g, housemates)
		case "twin":
			p = drawFrom(g, twinsNoPlan)
		case "withdrawn":
			p = drawFrom(g, withdrawn)
		case "namesake":
			p = g.namesake(live[g.rng.IntN(len(live))])
		}
		if p == nil { // none of that kind in a small set, or a stranger
			kind = "stranger"
			p = g.household().Members[0]
			p.PlanID = ""
		}
		q := g.baseQuery(p, p.Household, false)
		if g.chance(0.3) {
			var applied string
			q, applied = g.applyError(p, q, pick(g, memberErrors))
			if applied != "clean" {
				kind += "+" + applied
			}
		}
		worded, extras := g.present(p, q)
		qs = append(qs, LabeledQuery{Query: worded, Kind: kind, Extras: extras, Plain: plain(q, extras), AtHome: p.Household.Home})
	}
	return qs
}

// plain is q kept as LabeledQuery.Plain when present reworded it.
func plain(q matcher.Query, extras []string) *matcher.Query {
	if len(extras) == 0 {
		return nil
	}
	return &q
}

// present is how a caller words what they give, beyond the errors: the
// whole address with its flat or home ("Flat 3, 14 Elm Road", "Oak Lodge
// Care Home, 14 Elm Road") where the household lives in one, and both
// given names ("Mary Jane"): the forms the matcher's rules for flats,
// homes and second given names read. Only what the errors left as the
// caller's own is reworded.
func (g *gen) present(p *Person, q matcher.Query) (matcher.Query, []string) {
	var extras []string
	h := p.Household
	flat, both := g.extra.Float64() < 0.6, g.extra.Float64() < 0.25
	if flat && len(h.Lines) > 1 && q.Address == h.Lines[len(h.Lines)-1] {
		q.Address = strings.Join(h.Lines, ", ")
		if h.Home {
			extras = append(extras, "care-home")
		} else {
			extras = append(extras, "flat")
		}
	}
	if both && len(p.Given) > 1 && q.GivenName == p.Given[0] {
		q.GivenName = p.Given[0] + " " + p.Given[1]
		extras = append(extras, "second-given-name")
	}
	return q, extras
}

func pick(g *gen, from []struct {
	kind   string
	weight float64
}) string {
	total := 0.0
	for _, k := range from {
		total += k.weight
	}
	x := g.rng.Float64() * total
	for _, k := range from {
		if x < k.weight {
			return k.kind
		}
		x -= k.weight
	}
	return from[len(from)-1].kind
}

func drawFrom(g *gen, ps []*Person) *Person {
	if len(ps) == 0 {
		return nil
	}
	return ps[g.rng.IntN(len(ps))]
}

// namesake is someone else with a plan holder's given and family names,
// living elsewhere, born on another day: sometimes one digit or one year off.
func (g *gen) namesake(of *Person) *Person {
	h := g.address()
	p := g.person(of.Family, of.Gender, g.cfg.Today.Year()-of.DOB.Year())
	p.Given = []string{of.Given[0]}
	p.DOB = of.DOB
	switch {
	case g.chance(0.25):
		p.DOB = p.DOB.AddDate(1-2*g.rng.IntN(2), 0, 0)
	case g.chance(0.3):
		p.DOB = p.DOB.AddDate(0, 0, 1+g.rng.IntN(8))
	default:
		p.DOB = p.DOB.AddDate(-g.rng.IntN(15), -g.rng.IntN(12), -1-g.rng.IntN(27))
	}
	h.add(p)
	return p
}

// baseQuery is what a caller gives, correctly: names, birth date, postcode
// nearly always; gender, address, phone and NHS number sometimes.
func (g *gen) baseQuery(p *Person, h *Household, _ bool) matcher.Query {
	q := matcher.Query{GivenName: p.Given[0], FamilyName: p.Family, BirthDate: p.DOB.Format("2006-01-02"), Postcode: h.Postcode}
	if g.chance(0.5) {
		q.Gender = p.Gender
	}
	if g.chance(0.3) {
		q.Address = h.Lines[len(h.Lines)-1]
	}
	if g.chance(0.15) && p.NHS != "" {
		q.NHSNumber = p.NHS
	}
	if g.chance(0.6) { // the caller's line: the patient's own, or the household's
		switch {
		case p.Mobile != "" && g.chance(0.6):
			q.Phone = p.Mobile
		case h.Landline != "":
			q.Phone = h.Landline
		}
	}
	return q
}

// memberQuery is a plan holder's call, with a primary error and sometimes a second.
func (g *gen) memberQuery(p *Person) (matcher.Query, string) {
	q := g.baseQuery(p, p.Household, true)
	q, kind := g.applyError(p, q, pick(g, memberErrors))
	if kind != "clean" && g.chance(0.25) {
		var second string
		q, second = g.applyError(p, q, pick(g, memberErrors))
		if second != "clean" && second != kind {
			kind += "+" + second
		}
	}
	return q, kind
}

// applyError applies a caller error of the given kind where it applies and
// returns the kind applied ("clean" when it could not be).
func (g *gen) applyError(p *Person, q matcher.Query, kind string) (matcher.Query, string) {
	switch kind {
	case "nickname":
		nicks := g.ref.nicknames[strings.ToLower(p.Given[0])]
		if len(nicks) == 0 || !strings.EqualFold(q.GivenName, p.Given[0]) {
			return q, "clean"
		}
		q.GivenName = titleCase(nicks[g.rng.IntN(len(nicks))])
	case "given-typo":
		if len(q.GivenName) < 3 {
			return q, "clean"
		}
		q.GivenName = g.typo(q.GivenName)
	case "family-typo":
		if len(q.FamilyName) < 3 {
			return q, "clean"
		}
		q.FamilyName = g.typo(q.FamilyName)
	case "family-variant":
		v := g.variant(q.FamilyName)
		if v == "" {
			return q, "clean"
		}
		q.FamilyName = v
	case "dob-day-month-swap":
		d := p.DOB
		if d.Day() > 12 || d.Day() == int(d.Month()) || q.BirthDate == "" {
			return q, "clean"
		}
		q.BirthDate = strings.Join([]string{d.Format("2006"), twoDigits(d.Day()), twoDigits(int(d.Month()))}, "-")
	case "dob-typo":
		if q.BirthDate == "" {
			return q, "clean"
		}
		if t := g.dateTypo(q.BirthDate); t != "" {
			q.BirthDate = t
		} else {
			return q, "clean"
		}
	case "dob-year-off":
		if q.BirthDate == "" {
			return q, "clean"
		}
		q.BirthDate = p.DOB.AddDate(1-2*g.rng.IntN(2), 0, 0).Format("2006-01-02")
	case "missing-fields":
		// Drop one or two of postcode, birth date, given and family name,
		// keeping two of them (or a phone or NHS number) to search on.
		fields := []*string{&q.Postcode, &q.BirthDate, &q.GivenName, &q.FamilyName}
		drop := 1 + g.rng.IntN(2)
		if q.Phone == "" && q.NHSNumber == "" {
			present := 0
			for _, f := range fields {
				if *f != "" {
					present++
				}
			}
			drop = min(drop, present-2)
		}
		if drop <= 0 {
			return q, "clean"
		}
		for _, i := range g.rng.Perm(4)[:drop] {
			*fields[i] = ""
		}
		if q.Postcode == "" && q.Address != "" && g.chance(0.5) {
			q.Address = ""
		}
	case "postcode-outward-only":
		if q.Postcode == "" {
			return q, "clean"
		}
		q.Postcode = strings.Fields(q.Postcode)[0]
	case "postcode-typo":
		if q.Postcode == "" {
			return q, "clean"
		}
		q.Postcode = g.postcodeTypo(q.Postcode)
	case "old-postcode":
		if p.Household.Prev == nil || q.Postcode == "" {
			return q, "clean"
		}
		q.Postcode = p.Household.Prev.Postcode
		if q.Address != "" {
			q.Address = p.Household.Prev.Lines[len(p.Household.Prev.Lines)-1]
		}
	case "swapped-names":
		if q.GivenName == "" || q.FamilyName == "" {
			return q, "clean"
		}
		q.GivenName, q.FamilyName = q.FamilyName, q.GivenName
	case "initial-only":
		if q.GivenName == "" {
			return q, "clean"
		}
		q.GivenName = q.GivenName[:1]
	case "middle-name":
		if len(p.Given) < 2 || q.GivenName == "" {
			return q, "clean"
		}
		q.GivenName = p.Given[1]
	case "maiden-name":
		if p.Maiden == "" || q.FamilyName == "" {
			return q, "clean"
		}
		q.FamilyName = p.Maiden
	case "other-phone":
		q.Phone = g.phone(g.chance(0.5))
	case "formatting":
		q = g.reformat(q)
	default:
		return q, "clean"
	}
	return q, kind
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

// typo makes one keyboard slip: a neighbouring key, a dropped or doubled
// letter, or two letters swapped; the first letter is kept nine times in ten.
func (g *gen) typo(s string) string {
	b := []byte(s)
	lo := 1
	if g.chance(0.1) {
		lo = 0
	}
	i := lo + g.rng.IntN(len(b)-lo)
	switch g.rng.IntN(4) {
	case 0:
		c := b[i] | 0x20
		if n := keyboard[c]; n != "" {
			r := n[g.rng.IntN(len(n))]
			if b[i] < 'a' {
				r -= 0x20
			}
			b[i] = r
		}
	case 1:
		if len(b) > 3 {
			b = append(b[:i], b[i+1:]...)
		}
	case 2:
		b = append(b[:i+1], b[i:]...)
	default:
		if i+1 < len(b) {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	return string(b)
}

// variant spells a surname another way: from the UK variants table when it
// lists the name, else by a common spelling change.
func (g *gen) variant(s string) string {
	lower := strings.ToLower(s)
	if len(lower) < 3 {
		return ""
	}
	if vs := g.ref.surnameVariants[lower]; len(vs) > 0 {
		return titleCase(vs[g.rng.IntN(len(vs))])
	}
	swaps := [][2]string{{"ph", "f"}, {"son", "sen"}, {"ck", "k"}, {"ey", "y"}, {"ie", "y"}, {"mp", "m"},
		{"th", "t"}, {"ll", "l"}, {"tt", "t"}, {"ss", "s"}, {"e", "a"}, {"ou", "o"}}
	for _, k := range g.rng.Perm(len(swaps)) {
		from, to := swaps[k][0], swaps[k][1]
		if g.chance(0.5) {
			from, to = to, from
		}
		if i := strings.Index(lower[1:], from); i >= 0 {
			return titleCase(lower[:i+1] + to + lower[i+1+len(from):])
		}
	}
	return ""
}

// dateTypo changes one digit of an ISO date and keeps it a real date.
func (g *gen) dateTypo(iso string) string {
	for range 20 {
		b := []byte(iso)
		pos := []int{2, 3, 5, 6, 8, 9}[g.rng.IntN(6)]
		b[pos] = byte('0' + g.rng.IntN(10))
		s := string(b)
		if d, err := matcher.ParseDate(s); s != iso && err == nil && d != 0 {
			return s
		}
	}
	return ""
}

// postcodeTypo changes one character of a postcode, keeping its shape.
func (g *gen) postcodeTypo(pc string) string {
	b := []byte(pc)
	for range 20 {
		i := g.rng.IntN(len(b))
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			b[i] = byte('0' + g.rng.IntN(10))
		case c >= 'A' && c <= 'Z':
			b[i] = "ABDEFGHJLNPQRSTUWXYZ"[g.rng.IntN(20)]
		default:
			continue
		}
		if _, err := matcher.ParsePostcode(string(b)); string(b) != pc && err == nil {
			return string(b)
		}
		b = []byte(pc)
	}
	return pc
}

// reformat writes the same details differently: case, spacing, UK dates,
// national phone numbers, O Brien for O'Brien.
func (g *gen) reformat(q matcher.Query) matcher.Query {
	if g.chance(0.5) {
		q.GivenName = strings.ToUpper(q.GivenName)
		q.FamilyName = "  " + strings.ToLower(q.FamilyName) + " "
	}
	q.FamilyName = strings.ReplaceAll(q.FamilyName, "'", " ")
	if d, err := matcher.ParseDate(q.BirthDate); err == nil && d != 0 {
		q.BirthDate = twoDigits(d.Day()) + "/" + twoDigits(d.Month()) + "/" + strconv.Itoa(d.Year())
	}
	q.Postcode = strings.ToLower(strings.ReplaceAll(q.Postcode, " ", ""))
	if strings.HasPrefix(q.Phone, "+44") {
		q.Phone = "0" + q.Phone[3:6] + " " + q.Phone[6:]
	}
	return q
}

// Lookups returns the callers whose details the lookup API accepts (Check:
// every field readable, a birth date not in the future, enough to search
// on), and how many it left out: a caller the API answers 400 is never a
// lookup, so benchmarks of lookups leave them out. (A typo in a birth
// year can put it in the future: a few callers in 10,000.)
func Lookups(qs []LabeledQuery) (kept []LabeledQuery, refused int) {
	for _, q := range qs {
		if matcher.Check(q.Query) == nil {
			kept = append(kept, q)
		}
	}
	return kept, len(qs) - len(kept)
}

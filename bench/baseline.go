package bench

import (
	"fmt"
	"strings"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// Baseline is the exact-match rule a plain database lookup gives: a match on
// an exact NHS number, or on exact given name + family name + birth date +
// postcode (after case and spacing only); a possible on exact family name +
// birth date. It honours versions and withdrawals like the index.
type Baseline struct {
	versions map[string]uint64
	plans    map[string]*matcher.Patient
	byNHS    map[string][]string
	byFull   map[string][]string
	byFamDOB map[string][]string
}

// NewBaseline applies events in order.
func NewBaseline(events []feed.Event) *Baseline {
	b := &Baseline{versions: map[string]uint64{}, plans: map[string]*matcher.Patient{}}
	for i := range events {
		ev := &events[i]
		if v, ok := b.versions[ev.PlanID]; ok && ev.Version <= v {
			continue
		}
		b.versions[ev.PlanID] = ev.Version
		if ev.Type == feed.TypeWithdrawn {
			delete(b.plans, ev.PlanID)
		} else {
			b.plans[ev.PlanID] = ev.Patient
		}
	}
	b.byNHS, b.byFull, b.byFamDOB = map[string][]string{}, map[string][]string{}, map[string][]string{}
	for id, p := range b.plans {
		if n := digitsOnly(p.NHSNumber); n != "" {
			b.byNHS[n] = append(b.byNHS[n], id)
		}
		given := ""
		if len(p.GivenNames) > 0 {
			given = p.GivenNames[0]
		}
		dob := isoDate(p.BirthDate)
		if len(p.Addresses) > 0 {
			k := fullKey(given, p.FamilyName, dob, p.Addresses[0].Postcode)
			b.byFull[k] = append(b.byFull[k], id)
		}
		if p.FamilyName != "" && dob != "" {
			k := famKey(p.FamilyName, dob)
			b.byFamDOB[k] = append(b.byFamDOB[k], id)
		}
	}
	return b
}

// Match answers a query by the exact-match rule.
func (b *Baseline) Match(q matcher.Query) (matcher.Result, error) {
	one := func(ids []string, t matcher.Tier) matcher.Result {
		r := matcher.Result{Tier: t}
		for _, id := range ids[:min(len(ids), matcher.MaxCandidates)] {
			r.Candidates = append(r.Candidates, matcher.Candidate{PlanID: id, Tier: t})
		}
		return r
	}
	if n := digitsOnly(q.NHSNumber); n != "" && len(b.byNHS[n]) == 1 {
		return one(b.byNHS[n], matcher.TierMatch), nil
	}
	dob := isoDate(q.BirthDate)
	if ids := b.byFull[fullKey(firstToken(q.GivenName), q.FamilyName, dob, q.Postcode)]; len(ids) == 1 && dob != "" && q.Postcode != "" {
		return one(ids, matcher.TierMatch), nil
	}
	if ids := b.byFamDOB[famKey(q.FamilyName, dob)]; len(ids) > 0 && dob != "" && q.FamilyName != "" {
		return one(ids, matcher.TierPossible), nil
	}
	return matcher.Result{}, nil
}

func digitsOnly(s string) string {
	var sb strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			sb.WriteRune(c)
		}
	}
	return sb.String()
}

func firstToken(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func norm(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

func fullKey(given, family, dob, postcode string) string {
	return norm(firstToken(given)) + "|" + norm(family) + "|" + dob + "|" + strings.ReplaceAll(strings.ToUpper(postcode), " ", "")
}

func famKey(family, dob string) string { return norm(family) + "|" + dob }

// isoDate reads the forms a query may use and returns ISO, or "".
func isoDate(s string) string {
	d, err := matcher.ParseDate(s)
	if err != nil || d == 0 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year(), d.Month(), d.Day())
}

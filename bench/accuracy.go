package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/planflag/planflag/matcher"
)

// Lookup is what an accuracy evaluation measures: the matcher's index, or
// the exact-match baseline.
type Lookup interface {
	Match(matcher.Query) (matcher.Result, error)
}

// Outcome counts answers to one group of queries.
type Outcome struct {
	Queries     int
	Members     int
	NonMembers  int
	MatchRight  int // members: tier match with the expected plan first
	Flagged     int // members: expected plan among the candidates of a match or possible answer
	WrongMatch  int // members: tier match naming another plan
	Possible    int // members: tier possible
	PossibleTop int // of those, with the expected plan first
	NonMatch    int // non-members: tier match (a false confident match)
	NonPossible int // non-members: tier possible
	Leaks       int // answers naming a withdrawn plan
	InputErrors int // queries the lookup rejected
	Blocked     int // members whose plan the blocking keys brought up (matcher only)
	Eligible    int // members whose details meet the identity rule a match needs (matcher only)
	EligibleHit int // of those, matched to their plan
	Considered  int // plans scored, summed
}

func (o *Outcome) MatchRecall() float64    { return ratio(o.MatchRight, o.Members) }
func (o *Outcome) FlagRecall() float64     { return ratio(o.Flagged, o.Members) }
func (o *Outcome) FalseMatchRate() float64 { return ratio(o.NonMatch, o.NonMembers) }
func (o *Outcome) PossibleRate() float64   { return ratio(o.NonPossible, o.NonMembers) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Report is an evaluation of one lookup over one query set.
type Report struct {
	Name   string
	All    Outcome
	ByKind map[string]*Outcome
	// ByExtra groups the queries by how the caller worded them
	// (LabeledQuery.Extras), "as-typed" for those with no extra, and
	// those of callers living in a care home (AtHome); empty
	// when no query has one (FEBRL). ByExtraPlain is the same callers'
	// queries as they were before the rewording (LabeledQuery.Plain): the
	// difference is what the wording alone changes.
	ByExtra, ByExtraPlain map[string]*Outcome
}

// Inspector looks inside the matcher for a member's own plan: whether the
// blocking keys bring it up, and how the query agrees with it.
type Inspector interface {
	Blocked(q matcher.Query, planID string) (bool, error)
	Explain(q matcher.Query, planID string) (matcher.Agreement, float64, bool, error)
}

// Evaluate runs every query through m. withdrawn holds the plan IDs that
// were withdrawn (an answer naming one is a leak). in, if not nil, adds the
// blocking recall and the share of members a match is allowed for at all.
func Evaluate(name string, m Lookup, queries []LabeledQuery, withdrawn map[string]bool, in Inspector) Report {
	rep := Report{Name: name, ByKind: make(map[string]*Outcome)}
	worded := slices.ContainsFunc(queries, func(lq LabeledQuery) bool { return len(lq.Extras) > 0 || lq.AtHome })
	if worded {
		rep.ByExtra, rep.ByExtraPlain = make(map[string]*Outcome), make(map[string]*Outcome)
	}
	for _, lq := range queries {
		kind := lq.Kind
		if i := strings.IndexByte(kind, '+'); i >= 0 {
			kind = kind[:i] + "+another" // two errors: grouped by the first
		}
		o := rep.ByKind[kind]
		if o == nil {
			o = &Outcome{}
			rep.ByKind[kind] = o
		}
		outs := []*Outcome{&rep.All, o}
		if worded {
			extras := lq.Extras
			if len(extras) == 0 {
				extras = []string{"as-typed"}
			}
			if lq.AtHome {
				extras = append(slices.Clone(extras), "lives in a care home")
			}
			for _, e := range extras {
				if rep.ByExtra[e] == nil {
					rep.ByExtra[e] = &Outcome{}
				}
				outs = append(outs, rep.ByExtra[e])
			}
		}
		for _, out := range outs {
			out.Queries++
		}
		res, err := m.Match(lq.Query)
		for _, out := range outs {
			tally(out, lq, res, err, withdrawn)
		}
		if lq.Plain != nil {
			res, err := m.Match(*lq.Plain)
			for _, e := range lq.Extras {
				o := rep.ByExtraPlain[e]
				if o == nil {
					o = &Outcome{}
					rep.ByExtraPlain[e] = o
				}
				o.Queries++
				tally(o, lq, res, err, withdrawn)
			}
		}
		if in != nil && lq.Expect != "" && err == nil {
			ok, _ := in.Blocked(lq.Query, lq.Expect)
			a, _, found, _ := in.Explain(lq.Query, lq.Expect)
			eligible := found && a.Anchored()
			hit := eligible && res.Tier == matcher.TierMatch && res.Candidates[0].PlanID == lq.Expect
			for _, out := range []*Outcome{&rep.All, o} {
				out.Blocked += b2i(ok)
				out.Eligible += b2i(eligible)
				out.EligibleHit += b2i(hit)
			}
		}
	}
	return rep
}

func tally(o *Outcome, lq LabeledQuery, res matcher.Result, err error, withdrawn map[string]bool) {
	member := lq.Expect != ""
	if member {
		o.Members++
	} else {
		o.NonMembers++
	}
	if err != nil {
		o.InputErrors++
		return
	}
	o.Considered += res.Considered
	for _, c := range res.Candidates {
		if withdrawn[c.PlanID] {
			o.Leaks++
			break
		}
	}
	switch {
	case member && res.Tier == matcher.TierMatch && res.Candidates[0].PlanID == lq.Expect:
		o.MatchRight++
	case member && res.Tier == matcher.TierMatch:
		o.WrongMatch++
	case !member && res.Tier == matcher.TierMatch:
		o.NonMatch++
	case !member && res.Tier == matcher.TierPossible:
		o.NonPossible++
	case member && res.Tier == matcher.TierPossible:
		o.Possible++
		o.PossibleTop += b2i(res.Candidates[0].PlanID == lq.Expect)
	}
	if member && res.Tier != matcher.TierNone && slices.ContainsFunc(res.Candidates, func(c matcher.Candidate) bool { return c.PlanID == lq.Expect }) {
		o.Flagged++
	}
}

// WriteMarkdown writes the headline figures of reports side by side, then the
// breakdown by query kind of the first.
func WriteMarkdown(w io.Writer, reports ...Report) {
	fmt.Fprintf(w, "| measure |")
	for _, r := range reports {
		fmt.Fprintf(w, " %s |", r.Name)
	}
	fmt.Fprintf(w, "\n|---|")
	for range reports {
		fmt.Fprintf(w, "---|")
	}
	fmt.Fprintln(w)
	row := func(label string, f func(o *Outcome) string) {
		fmt.Fprintf(w, "| %s |", label)
		for _, r := range reports {
			fmt.Fprintf(w, " %s |", f(&r.All))
		}
		fmt.Fprintln(w)
	}
	row("queries (members / non-members)", func(o *Outcome) string {
		return fmt.Sprintf("%d (%d / %d)", o.Queries, o.Members, o.NonMembers)
	})
	row("match recall", func(o *Outcome) string { return fmt.Sprintf("%.4f", o.MatchRecall()) })
	row("flag recall", func(o *Outcome) string { return fmt.Sprintf("%.4f", o.FlagRecall()) })
	row("wrong-plan matches (members)", func(o *Outcome) string { return fmt.Sprint(o.WrongMatch) })
	row("members answered possible: their plan first", func(o *Outcome) string {
		if o.Possible == 0 {
			return "–"
		}
		return fmt.Sprintf("%.4f (%d of %d)", ratio(o.PossibleTop, o.Possible), o.PossibleTop, o.Possible)
	})
	row("non-member false-match rate", func(o *Outcome) string {
		return fmt.Sprintf("%.4f%% (%d)", 100*o.FalseMatchRate(), o.NonMatch)
	})
	row("non-member possible rate", func(o *Outcome) string { return fmt.Sprintf("%.2f%%", 100*o.PossibleRate()) })
	row("withdrawn leaks", func(o *Outcome) string { return fmt.Sprint(o.Leaks) })
	row("queries rejected as input errors", func(o *Outcome) string { return fmt.Sprint(o.InputErrors) })
	if len(reports) > 0 && reports[0].All.Blocked > 0 {
		row("blocking recall (plan among those scored)", func(o *Outcome) string {
			if o.Blocked == 0 {
				return "–"
			}
			return fmt.Sprintf("%.4f", ratio(o.Blocked, o.Members))
		})
		row("members whose details allow a match (identity rule)", func(o *Outcome) string {
			if o.Eligible == 0 {
				return "–"
			}
			return fmt.Sprintf("%.4f", ratio(o.Eligible, o.Members))
		})
		row("match recall among those", func(o *Outcome) string {
			if o.Eligible == 0 {
				return "–"
			}
			return fmt.Sprintf("%.4f", ratio(o.EligibleHit, o.Eligible))
		})
		row("plans scored per lookup (mean)", func(o *Outcome) string {
			if o.Considered == 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f", ratio(o.Considered, o.Queries-o.InputErrors))
		})
	}
	if len(reports) == 0 {
		return
	}
	r := reports[0]
	kinds := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		a, b := r.ByKind[kinds[i]], r.ByKind[kinds[j]]
		if (a.Members > 0) != (b.Members > 0) {
			return a.Members > 0
		}
		return kinds[i] < kinds[j]
	})
	if len(r.ByExtra) > 0 {
		fmt.Fprintf(w, "\nBy how the caller worded the details (%s; a query may be in two rows; in brackets, the same callers' queries without the wording):\n\n", r.Name)
		fmt.Fprintln(w, "| wording | members | match recall | flag recall | wrong-plan matches | non-members | false matches | possible |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, e := range []string{"as-typed", "flat", "care-home", "second-given-name", "lives in a care home"} {
			o := r.ByExtra[e]
			if o == nil {
				continue
			}
			pl := r.ByExtraPlain[e]
			both := func(f string, worded, plain any) string {
				if pl == nil {
					return fmt.Sprintf(f, worded)
				}
				return fmt.Sprintf(f+" ("+f+")", worded, plain)
			}
			var pm, pf, pw, pn, pp any
			if pl != nil {
				pm, pf, pw, pn, pp = pl.MatchRecall(), pl.FlagRecall(), pl.WrongMatch, pl.NonMatch, 100*pl.PossibleRate()
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %d | %s | %s |\n", e, o.Members, both("%.4f", o.MatchRecall(), pm),
				both("%.4f", o.FlagRecall(), pf), both("%d", o.WrongMatch, pw), o.NonMembers, both("%d", o.NonMatch, pn),
				both("%.2f%%", 100*o.PossibleRate(), pp))
		}
	}
	fmt.Fprintf(w, "\nBy query kind (%s):\n\n", r.Name)
	fmt.Fprintln(w, "| kind | queries | match recall | flag recall | wrong-plan matches | false matches | possible |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, k := range kinds {
		o := r.ByKind[k]
		if o.Members > 0 {
			fmt.Fprintf(w, "| %s | %d | %.4f | %.4f | %d | – | – |\n", k, o.Queries, o.MatchRecall(), o.FlagRecall(), o.WrongMatch)
		} else {
			fmt.Fprintf(w, "| %s (non-member) | %d | – | – | – | %d | %.2f%% |\n", k, o.Queries, o.NonMatch, 100*o.PossibleRate())
		}
	}
}

// kindSummary is a one-line text summary, for progress output.
func (r *Report) Summary() string {
	o := &r.All
	return strings.TrimSpace(fmt.Sprintf("%s: match recall %.4f, flag recall %.4f, wrong-plan %d, false-match rate %.4f%%, possible rate %.2f%%, leaks %d, input errors %d",
		r.Name, o.MatchRecall(), o.FlagRecall(), o.WrongMatch, 100*o.FalseMatchRate(), 100*o.PossibleRate(), o.Leaks, o.InputErrors))
}

package matcher

import (
	_ "embed"
	"slices"
	"strings"
)

//go:embed data/nicknames.csv
var nicknamesCSV string

// maxFormals bounds the formal names a nickname stands for, itself
// included: above the table's longest list ("chris": 19, Christopher,
// Christine, Kristopher and the rest), so that none is cut short — a list
// cut at 8 once lost Christopher for Chris, so that the caller's own plan
// scored a different name and a twin's a nickname — while a table grown
// careless could not widen blocking without end (TestNicknamesWhole).
const maxFormals = 24

// nicknames maps a normalised given name to the formal names it can stand
// for, itself first: "bob" → [bob robert …], "robert" → [robert …]. Names in
// no table are absent (their only formal name is themselves). Built once;
// read-only afterwards, so readers need no lock.
var nicknames = buildNicknames(nicknamesCSV)

func buildNicknames(csv string) map[string][]string {
	formals := make(map[string][]string)
	add := func(name, formal string) {
		list := formals[name]
		if len(list) == 0 {
			list = append(list, name)
		}
		if !slices.Contains(list, formal) && len(list) < maxFormals {
			list = append(list, formal)
		}
		formals[name] = list
	}
	for i, line := range strings.Split(csv, "\n") {
		if i == 0 {
			continue // header
		}
		formal, rest, ok := strings.Cut(strings.TrimSpace(line), ",has_nickname,")
		if !ok || formal == "" || rest == "" {
			continue
		}
		add(formal, formal)
		add(rest, formal)
	}
	return formals
}

// formalsOf returns the formal names of a normalised given name: itself, and
// what it may be a nickname for.
func formalsOf(name string) []string {
	if f, ok := nicknames[name]; ok {
		return f
	}
	return nil
}

// nicknameAgree reports whether two different normalised given names can
// name the same person: one is a nickname of the other, or both are nicknames
// of one formal name (Peggy and Maggie of Margaret).
func nicknameAgree(a, b string) bool {
	fa, fb := formalsOf(a), formalsOf(b)
	if fa == nil || fb == nil {
		return false
	}
	for _, x := range fa {
		for _, y := range fb {
			if x == y {
				return true
			}
		}
	}
	return false
}

//go:embed data/given_names.txt
var givenNamesTxt string

//go:embed data/given_names_older.txt
var olderGivenNamesTxt string

// knownGivenNames is every first name registered for at least three births
// in England and Wales, 1996–2018 (scripts/gen-given-names.sh), and names of
// older generations those years lack (given_names_older.txt: Glenda,
// Gwenda, Melvyn, Meriel…), sorted: substrings of the embedded files, so it
// costs the slice headers only.
var knownGivenNames = func() []string {
	names := append(strings.Fields(givenNamesTxt), strings.Fields(olderGivenNamesTxt)...)
	slices.Sort(names)
	return slices.Compact(names)
}()

// knownGiven reports whether a normalised given name is a name people are
// given (the registered names above, or a name in the nickname table)
// rather than a misspelling of one.
func knownGiven(s string) bool {
	if _, ok := nicknames[s]; ok {
		return true
	}
	_, ok := slices.BinarySearch(knownGivenNames, s)
	return ok
}

// variantSpellings are spellings of one given name, each set one person's
// name written either way. A rule (a doubled letter, a final e) would join
// a boy's name to a girl's (Simon and Simone, Ross and Ros, Justin and
// Justine), and twins are named so: only pairs listed here count.
var variantSpellings = [][]string{
	{"graham", "graeme"}, {"deirdre", "deidre"}, {"ian", "iain"}, {"sean", "shaun", "shawn"},
	{"alistair", "alasdair", "alastair", "alisdair"}, {"stephen", "steven"}, {"elizabeth", "elisabeth"},
	{"catherine", "katherine", "katharine", "kathryn", "cathryn"}, {"marjorie", "marjory"},
	{"sheila", "sheelagh"}, {"eamonn", "eamon"}, {"geoffrey", "jeffrey", "jeffery"},
	{"lynn", "lynne", "lyn"}, {"sharon", "sharron"}, {"kirsten", "kirsteen"}, {"lorraine", "loraine"},
	{"colleen", "coleen"}, {"carol", "carole"}, {"philip", "phillip"}, {"sarah", "sara"}, {"ann", "anne"},
	{"alan", "allan", "allen"}, {"brian", "bryan"}, {"teresa", "theresa"}, {"hilary", "hillary"},
	{"rosemary", "rosemarie"}, {"neil", "neal"}, {"stuart", "stewart"}, {"isabel", "isobel", "isabelle"},
	{"sylvia", "silvia"}, {"derek", "derrick"}, {"barry", "barrie"}, {"eric", "erik"},
	{"frederick", "frederic"}, {"wilfred", "wilfrid"}, {"gwendoline", "gwendolyn", "gwendolen"},
	{"kathleen", "cathleen"}, {"philippa", "phillipa"}, {"marion", "marian"}, {"jacqueline", "jaqueline"},
	{"glenys", "glynis"}, {"dilys", "dylis"}, {"muriel", "murial"},
	{"mohammed", "muhammad", "mohammad", "mohamed", "muhammed", "mohamad", "mohammad"},
}

// prefixNames are first given names that many brothers (or sisters) share,
// told apart by the second: Mohammed Ali and Mohammed Imran, Abdul Karim
// and Abdul Rahman (read from the plan's first name, so a caller's typo of
// it is caught too).
var prefixNames = []string{"mohammed", "muhammad", "mohammad", "mohamed", "muhammed", "mohamad", "md", "mohd",
	"syed", "mst", "abdul", "abdal", "abd"}

// variantOf maps each spelling in variantSpellings to its set's index.
var variantOf = func() map[string]int {
	m := make(map[string]int)
	for i, set := range variantSpellings {
		for _, n := range set {
			m[n] = i
		}
	}
	return m
}()

// spellingOf reports whether the plan holder's given name g is another
// spelling of the caller's (variantSpellings), the caller's set looked up
// once, in prepare.
func (pq *prepared) spellingOf(g string) bool {
	if pq.givenVariant < 0 || g == pq.given {
		return false
	}
	j, ok := variantOf[g]
	return ok && j == pq.givenVariant
}

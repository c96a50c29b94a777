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

// variantSpellings are spellings of one given name that the rules of
// spellingVariant do not see.
var variantSpellings = [][]string{
	{"graham", "graeme"}, {"deirdre", "deidre"}, {"ian", "iain"}, {"sean", "shaun", "shawn"},
	{"alistair", "alasdair", "alastair", "alisdair"}, {"stephen", "steven"}, {"elizabeth", "elisabeth"},
	{"catherine", "katherine", "katharine", "kathryn", "cathryn"}, {"marjorie", "marjory"},
	{"sheila", "sheelagh"}, {"eamonn", "eamon"}, {"geoffrey", "jeffrey"},
}

// spellingVariant reports two different normalised given names that are
// one name spelt two ways: one with a letter doubled (Lyn and Lynn, Philip
// and Phillip), one with a final e after a consonant other than s (Lynn
// and Lynne, Carol and Carole; not Louis and Louise, Jo and Joe, which
// are a boy's and a girl's), or a pair in variantSpellings. The first
// letter must agree: Gillian and Lillian, Glyn and Lyn are two names.
func spellingVariant(a, b string) bool {
	if a == "" || b == "" || a[0] != b[0] {
		return false
	}
	for _, set := range variantSpellings {
		if slices.Contains(set, a) && slices.Contains(set, b) {
			return true
		}
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b) != len(a)+1 {
		return false
	}
	if b[:len(a)] == a && b[len(a)] == 'e' {
		last := a[len(a)-1]
		return !strings.ContainsRune("aeiouys", rune(last))
	}
	for i := 1; i < len(b); i++ {
		if b[i] == b[i-1] && b[:i]+b[i+1:] == a {
			return true
		}
	}
	return false
}

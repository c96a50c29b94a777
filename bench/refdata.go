package bench

import (
	"embed"
	"strconv"
	"strings"
	"sync"
)

//go:embed data/*.csv data/*.txt
var refFS embed.FS

// refData is the reference data the generator draws from (data/NOTICE).
type refData struct {
	female, male     weighted
	surnames         weighted
	surnameVariants  map[string][]string
	nicknames        map[string][]string // formal → nicknames
	postcodes        []string
	postcodeArea     []string
	streetNames      []string
	postcodeByString map[string]bool
}

// weighted draws strings with given weights.
type weighted struct {
	names []string
	cum   []float64
}

func (w *weighted) add(name string, weight float64) {
	total := weight
	if n := len(w.cum); n > 0 {
		total += w.cum[n-1]
	}
	w.names = append(w.names, name)
	w.cum = append(w.cum, total)
}

func (w *weighted) draw(u float64) string {
	x := u * w.cum[len(w.cum)-1]
	lo, hi := 0, len(w.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if w.cum[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return w.names[lo]
}

var loadRef = sync.OnceValue(func() *refData {
	r := &refData{surnameVariants: map[string][]string{}, nicknames: map[string][]string{}, postcodeByString: map[string]bool{}}
	rows := func(name string) [][]string {
		b, err := refFS.ReadFile("data/" + name)
		if err != nil {
			panic("bench: embedded " + name + ": " + err.Error())
		}
		var out [][]string
		for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if i == 0 && strings.HasSuffix(name, ".csv") {
				continue
			}
			out = append(out, strings.Split(strings.TrimSpace(line), ","))
		}
		return out
	}
	for _, g := range []struct {
		file string
		w    *weighted
	}{{"given_female.csv", &r.female}, {"given_male.csv", &r.male}} {
		for _, row := range rows(g.file) {
			n, _ := strconv.ParseFloat(row[1], 64)
			g.w.add(titleCase(row[0]), n)
		}
	}
	for _, row := range rows("surnames.csv") {
		f, _ := strconv.ParseFloat(row[1], 64)
		r.surnames.add(titleCase(row[0]), f)
	}
	for _, row := range rows("surname_variants.csv") {
		r.surnameVariants[row[0]] = append(r.surnameVariants[row[0]], row[1])
	}
	for _, row := range rows("nicknames.csv") {
		r.nicknames[row[0]] = append(r.nicknames[row[0]], row[1])
	}
	for _, row := range rows("postcodes.csv") {
		r.postcodes = append(r.postcodes, row[0])
		r.postcodeArea = append(r.postcodeArea, row[1])
		r.postcodeByString[row[0]] = true
	}
	for _, row := range rows("street_names.txt") {
		r.streetNames = append(r.streetNames, row[0])
	}
	return r
})

// titleCase capitalises each word and each part after a hyphen or apostrophe.
func titleCase(s string) string {
	b := []byte(s)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == ' ' || c == '-' || c == '\''
	}
	return string(b)
}

// IsRealPostcode reports whether pc is one of the embedded real postcodes.
func IsRealPostcode(pc string) bool { return loadRef().postcodeByString[pc] }

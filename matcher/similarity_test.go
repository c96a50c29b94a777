package matcher

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/xrash/smetrics"
)

type jwVector struct {
	a, b     string
	jaro, jw float64 // to three places; jw < 0: not published
}

// Published Jaro and Jaro-Winkler values, to three decimal places.
var jwVectors = []jwVector{
	// Wikipedia, "Jaro–Winkler distance", and jellyfish testdata/jaro_distance.csv
	// and jaro_winkler.csv (github.com/jamesturk/jellyfish, MIT licence).
	{"martha", "marhta", 0.944, 0.961},
	{"dwayne", "duane", 0.822, 0.840},
	{"dixon", "dicksonx", 0.767, 0.813},
	{"william", "williams", 0.958, 0.975},
	{"jellyfish", "smellyfish", 0.896, 0.896},
	{"crate", "trace", 0.733, 0.733},
	{"faremviel", "farmville", 0.884, 0.919},
	{"", "foo", 0, 0},
	{"a", "a", 1, 1},
	{"abc", "xyz", 0, 0},
	// W. E. Winkler, "Advanced Methods of Record Linkage", US Census Bureau
	// SRD research report RR94/05, Table 2.1 (a US Government work), Jaro
	// and Winkler columns. Left out or changed, as the paper's comparator
	// (strcmp95) adds adjustments that are not part of Jaro-Winkler: JON/JAN
	// and 1ST/IST, which the paper gives as 0 (standard Jaro 0.778 both);
	// MASSEY/MASSIE, whose Winkler value the paper gives as 0.944 (0.933
	// with the standard scale 0.1); DWAYNE/DUANE (above), 0.858 there.
	{"shackleford", "shackelford", 0.970, 0.982},
	{"dunningham", "cunnigham", 0.896, 0.896},
	{"nichleson", "nichulson", 0.926, 0.956},
	{"jones", "johnson", 0.790, 0.832},
	{"massey", "massie", 0.889, 0.933},
	{"abroms", "abrams", 0.889, 0.922},
	{"hardin", "martinez", 0.722, 0.722},
	{"itman", "smith", 0.467, 0.467},
	{"jeraldine", "geraldine", 0.926, 0.926},
	{"marhta", "martha", 0.944, 0.961},
	{"michelle", "michael", 0.869, 0.921},
	{"julies", "julius", 0.889, 0.933},
	{"tanya", "tonya", 0.867, 0.880},
	{"sean", "susan", 0.783, 0.805},
	{"jon", "john", 0.917, 0.933},
	{"brookhaven", "brrokhaven", 0.933, 0.947},
	{"brook hallow", "brook hllw", 0.944, 0.967},
	{"decatur", "decatir", 0.905, 0.943},
	{"fitzrureiter", "fitzenreiter", 0.856, 0.913},
	{"higbee", "highee", 0.889, 0.922},
	{"higbee", "higvee", 0.889, 0.922},
	{"lacura", "locura", 0.889, 0.900},
	{"iowa", "iona", 0.833, 0.867},
	// W. E. Winkler, "String Comparator Metrics and Enhanced Decision Rules
	// in the Fellegi-Sunter Model of Record Linkage", RR93/08, Table 5, the
	// Jaro column (its Winkler column uses other prefix scales).
	{"billy", "billy", 1, 1},
	{"billy", "bill", 0.933, -1},
	{"billy", "blily", 0.933, -1},
	{"massie", "massey", 0.889, -1},
	{"yvette", "yevett", 0.889, -1},
	{"billy", "bolly", 0.867, -1},
	{"dixon", "dickson", 0.790, -1},
	{"billy", "susan", 0, 0},
}

func TestJaroWinklerVectors(t *testing.T) {
	for _, v := range jwVectors {
		if got := Jaro(v.a, v.b); math.Abs(got-v.jaro) > 0.0005 {
			t.Errorf("Jaro(%q, %q) = %.4f, want %.3f", v.a, v.b, got, v.jaro)
		}
		if got := JaroWinkler(v.a, v.b); v.jw >= 0 && math.Abs(got-v.jw) > 0.0005 {
			t.Errorf("JaroWinkler(%q, %q) = %.4f, want %.3f", v.a, v.b, got, v.jw)
		}
		if Jaro(v.a, v.b) != Jaro(v.b, v.a) || JaroWinkler(v.a, v.b) != JaroWinkler(v.b, v.a) {
			t.Errorf("(%q, %q): not symmetric", v.a, v.b)
		}
	}
	// The paper's two zeros, for the record.
	for _, p := range [][2]string{{"jon", "jan"}, {"1st", "ist"}} {
		if got := Jaro(p[0], p[1]); math.Abs(got-7.0/9) > 1e-12 {
			t.Errorf("Jaro(%q, %q) = %v, want 7/9", p[0], p[1], got)
		}
	}
	// Exact values.
	for _, v := range []struct {
		a, b     string
		jaro, jw float64
	}{
		{"", "", 1, 1}, {"", "x", 0, 0}, {"x", "", 0, 0}, {"abc", "abc", 1, 1},
		{"martha", "marhta", 17.0 / 18, 17.0/18 + 0.3*(1.0/18)},
		{"crate", "trace", 11.0 / 15, 11.0 / 15},
		{"ab", "ba", 0, 0}, // window 0: a and b do not match
		{"abc", "bca", 0, 0},
		{"a", "b", 0, 0},
	} {
		if got := Jaro(v.a, v.b); math.Abs(got-v.jaro) > 1e-12 {
			t.Errorf("Jaro(%q, %q) = %v, want %v", v.a, v.b, got, v.jaro)
		}
		if got := JaroWinkler(v.a, v.b); math.Abs(got-v.jw) > 1e-12 {
			t.Errorf("JaroWinkler(%q, %q) = %v, want %v", v.a, v.b, got, v.jw)
		}
	}
}

// Real names (mostly UK), with their usual variants and misspellings.
var jwNames = strings.Fields(`
	smith smyth smithe jones johns johnson jonson williams william wiliams taylor tailor
	brown browne davies davis davey evans evens wilson willson thomas tomas thompson thomson
	tompson roberts robertson johnston johnstone wright right walker wlaker robinson robinsen
	white whyte thompson hughes hewes edwards edwardes green greene hall hal wood woods harris
	harries lewis louis martin martyn jackson jakson clarke clark clerk turner tunrer hill hil
	scott scot cooper couper morris maurice ward warde moore more king kinge watson whatson
	baker barker harrison harrisson morgan morgen patel patal khan kahn begum begam ahmed ahmad
	mohammed muhammad mohamed hussain hussein ali aly singh sing kaur kour oconnor oconner
	mcdonald macdonald mcdonnell obrien obrian murphy murphey kelly kelley ryan rian
	margaret margret marguerite peggy elizabeth elisabeth eliza beth catherine katherine
	kathryn cathryn stephen steven stephan jonathan johnathan jon john sean shaun shawn
	geoffrey jeffrey jeffery philip phillip phil alistair alasdair alastair siobhan
	sarah sara rachel rachael deborah debra debbie anne ann annie christopher kristopher
	chris nicholas nicolas nick matthew mathew michael micheal michelle mitchell
	a ab ba abc bca aaaa aa zzzzzzzzzz abcdefghijklmnopqrstuvwxyz zyxwvutsrqponmlkjihgfedcba
	mary-ann o'neill st.john van-der-berg
`)

func jwRandom(rng *rand.Rand, maxLen int, alphabet string) string {
	b := make([]byte, rng.IntN(maxLen+1))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// Our allocation-free version gives smetrics's answers: every pair of the
// real names above and many random pairs, short and long (past the 64-byte
// fast path), over small alphabets (many matches and transpositions) and
// arbitrary bytes.
func TestJaroWinklerAgreesWithSmetrics(t *testing.T) {
	var pairs [][2]string
	for _, a := range jwNames {
		for _, b := range jwNames {
			pairs = append(pairs, [2]string{a, b})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		switch rng.IntN(4) {
		case 0:
			pairs = append(pairs, [2]string{jwRandom(rng, 12, "abc"), jwRandom(rng, 12, "abc")})
		case 1:
			pairs = append(pairs, [2]string{jwRandom(rng, 16, "abcdefgh"), jwRandom(rng, 16, "abcdefgh")})
		case 2:
			// Around and past the 64-byte fast path.
			pairs = append(pairs, [2]string{jwRandom(rng, 140, "abcd\xd0\xb1"), jwRandom(rng, 140, "abcd\xd0\xb1")})
		default:
			pairs = append(pairs, [2]string{jwRandom(rng, 10, "ab\x00\xff"), jwRandom(rng, 10, "ab\x00\xff")})
		}
		// A word and a mutation of it: real-looking near matches.
		w := jwNames[rng.IntN(len(jwNames))]
		m := []byte(w)
		if len(m) > 1 {
			i := rng.IntN(len(m) - 1)
			m[i], m[i+1] = m[i+1], m[i]
		}
		pairs = append(pairs, [2]string{w, string(m)})
	}
	exact := 0
	for _, p := range pairs {
		a, b := p[0], p[1]
		got, want := Jaro(a, b), smetrics.Jaro(a, b)
		if math.Abs(got-want) > 1e-9 {
			t.Fatalf("Jaro(%q, %q) = %v, smetrics %v", a, b, got, want)
		}
		gotJW, wantJW := JaroWinkler(a, b), smetrics.JaroWinkler(a, b, 0.7, 4)
		if math.Abs(gotJW-wantJW) > 1e-9 {
			t.Fatalf("JaroWinkler(%q, %q) = %v, smetrics %v", a, b, gotJW, wantJW)
		}
		if got == want && gotJW == wantJW {
			exact++
		}
	}
	t.Logf("%d pairs agree with smetrics to 1e-9, %d of them exactly", len(pairs), exact)
}

func TestJaroWinklerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	long := strings.Repeat("abcdefgh", 8) // 64 bytes: still the fast path
	for _, p := range [][2]string{
		{"margaret", "margret"}, {"", "x"}, {"same", "same"}, {"dixon", "dicksonx"},
		{long, long[1:] + "z"}, {long, strings.Repeat("x", 64)},
	} {
		a, b := p[0], p[1]
		if n := testing.AllocsPerRun(200, func() { _ = JaroWinkler(a, b) }); n != 0 {
			t.Errorf("JaroWinkler(%q, %q) allocates %.1f times", a, b, n)
		}
		if n := testing.AllocsPerRun(200, func() { _ = Jaro(a, b) }); n != 0 {
			t.Errorf("Jaro(%q, %q) allocates %.1f times", a, b, n)
		}
	}
}

func FuzzJaroWinkler(f *testing.F) {
	for _, v := range jwVectors {
		f.Add(v.a, v.b)
	}
	f.Add("", "")
	f.Add("\xff\x00é", "é")
	f.Add(strings.Repeat("ab", 40), strings.Repeat("ba", 33))
	f.Fuzz(func(t *testing.T, a, b string) {
		s := JaroWinkler(a, b)
		if !(s >= 0 && s <= 1) {
			t.Fatalf("JaroWinkler(%q, %q) = %v", a, b, s)
		}
		if r := JaroWinkler(b, a); r != s {
			t.Fatalf("JaroWinkler(%q, %q) = %v but %v the other way", a, b, s, r)
		}
		if j, r := Jaro(a, b), Jaro(b, a); j != r || !(j >= 0 && j <= s) {
			t.Fatalf("Jaro(%q, %q) = %v, %v the other way, Jaro-Winkler %v", a, b, j, r, s)
		}
		if JaroWinkler(a, a) != 1 || Jaro(a, a) != 1 {
			t.Fatalf("(%q, itself) = %v, %v", a, JaroWinkler(a, a), Jaro(a, a))
		}
		// The fast path and the general one agree, and both agree with
		// smetrics.
		if a != "" && b != "" && a != b {
			if j, l := Jaro(a, b), jaroLong(a, b); j != l {
				t.Fatalf("Jaro(%q, %q) = %v, jaroLong %v", a, b, j, l)
			}
		}
		if want := smetrics.JaroWinkler(a, b, 0.7, 4); math.Abs(s-want) > 1e-9 {
			t.Fatalf("JaroWinkler(%q, %q) = %v, smetrics %v", a, b, s, want)
		}
	})
}

func BenchmarkJaroWinkler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		JaroWinkler("margaret", "margret")
		JaroWinkler("shackleford", "shackelford")
		JaroWinkler("jones", "johnson")
		JaroWinkler("smith", "jackson")
	}
}

// For comparison: smetrics on the same pairs.
func BenchmarkJaroWinklerSmetrics(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		smetrics.JaroWinkler("margaret", "margret", 0.7, 4)
		smetrics.JaroWinkler("shackleford", "shackelford", 0.7, 4)
		smetrics.JaroWinkler("jones", "johnson", 0.7, 4)
		smetrics.JaroWinkler("smith", "jackson", 0.7, 4)
	}
}

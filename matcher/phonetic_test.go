package matcher

// Tests of the phonetic codes against published vectors.
//
// We do not use github.com/xrash/smetrics's Soundex (see phonetic.go): it
// fails several of the standard vectors below and panics on the empty
// string. TestSoundexSmetrics records where it differs.

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/xrash/smetrics"
)

// Soundex vectors, with their sources:
//   - US National Archives, "The Soundex Indexing System" (public domain):
//     Gutierrez, Pfister, Jackson, Tymczak, VanDeusen (coded without
//     regard to the prefix), Ashcraft, Lee, Washington;
//   - D. E. Knuth, The Art of Computer Programming vol. 3, §6.4: Euler,
//     Gauss, Hilbert, Knuth, Lloyd, Lukasiewicz and the names with the same
//     codes, Ellery, Ghosh, Heilbronn, Kant, Ladd, Lissajous;
//   - Wikipedia, "Soundex": Robert, Rupert, Rubin, Ashcroft, Honeyman;
//   - jellyfish testdata/soundex.csv (github.com/jamesturk/jellyfish, MIT
//     licence): Washington, Lee, Gutierrez, Pfister, Jackson, Tymczak, "",
//     A, Ashcroft (its two non-ASCII rows are left out: jellyfish
//     transliterates, while our input is already normalised).
var soundexVectors = []struct{ in, want string }{
	{"ashcraft", "A261"}, {"ashcroft", "A261"}, {"tymczak", "T522"}, {"pfister", "P236"},
	{"jackson", "J250"}, {"robert", "R163"}, {"rupert", "R163"}, {"rubin", "R150"},
	{"honeyman", "H555"}, {"lee", "L000"}, {"gutierrez", "G362"}, {"lloyd", "L300"},
	{"washington", "W252"}, {"vandeusen", "V532"}, {"deusen", "D250"},
	{"euler", "E460"}, {"gauss", "G200"}, {"hilbert", "H416"}, {"knuth", "K530"},
	{"lukasiewicz", "L222"}, {"ellery", "E460"}, {"ghosh", "G200"}, {"heilbronn", "H416"},
	{"kant", "K530"}, {"ladd", "L300"}, {"lissajous", "L222"},
	{"", ""}, {"a", "A000"},
}

func TestSoundex(t *testing.T) {
	for _, v := range soundexVectors {
		if got := SoundexOf(v.in).String(); got != v.want {
			t.Errorf("SoundexOf(%q) = %q, want %q", v.in, got, v.want)
		}
	}
	if SoundexOf("") != (Soundex{}) {
		t.Errorf("SoundexOf(\"\") = %q, want the zero value", SoundexOf(""))
	}
	// Bytes other than a-z are skipped.
	for in, want := range map[string]string{
		"van deusen": "V532", "o'brien": "O165", "ashcroft-smith": "A261", "-- lee": "L000",
		"é": "", "\xffpfister\x00": "P236", "PFISTER": "", "Pfister": "F236",
	} {
		if got := SoundexOf(in).String(); got != want {
			t.Errorf("SoundexOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSoundexSmetrics records smetrics.Soundex's answers on the standard
// vectors. It fails only if our code does; smetrics's mistakes are logged.
func TestSoundexSmetrics(t *testing.T) {
	differs := 0
	for _, v := range soundexVectors {
		if got := SoundexOf(v.in).String(); got != v.want {
			t.Errorf("SoundexOf(%q) = %q, want %q", v.in, got, v.want)
		}
		got, panicked := smetricsSoundex(v.in)
		switch {
		case panicked != nil:
			differs++
			t.Logf("smetrics.Soundex(%q) panics: %v; standard %q", v.in, panicked, v.want)
		case got != v.want:
			differs++
			t.Logf("smetrics.Soundex(%q) = %q; standard %q", v.in, got, v.want)
		}
	}
	if differs == 0 {
		t.Logf("smetrics.Soundex now passes every vector")
	}
}

func smetricsSoundex(s string) (code string, panicked any) {
	defer func() { panicked = recover() }()
	return smetrics.Soundex(s), nil
}

// NYSIIS vectors, whole (untruncated) codes, with their sources:
//   - jellyfish testdata/nysiis.csv (github.com/jamesturk/jellyfish, MIT
//     licence), all rows but two: Bosch (jellyfish BAS, see
//     nysiisDisagreements) and the non-ASCII ç;
//   - Apache Commons Codec, NysiisTest.java (github.com/apache/commons-codec,
//     Apache License 2.0), its full-code assertions (testDropBy, testDropBy2,
//     testOthers, testRule1 … testRule7) and its six-letter ones (testBran,
//     testCap, testDad, testDan, testFal, testSnad, testSnat,
//     testSpecialBranches, testTranan, testTrueVariant), whose codes are
//     short enough to be whole. Inputs are written here as normalised
//     names (lower case, O'Daniel as odaniel).
var nysiisVectors = []struct{ in, want string }{
	// jellyfish
	{"worthy", "WARTY"}, {"ogata", "OGAT"}, {"montgomery", "MANTGANARY"}, {"costales", "CASTAL"},
	{"tu", "T"}, {"martincevic", "MARTANCAFAC"}, {"catherine", "CATARAN"}, {"katherine", "CATARAN"},
	{"katerina", "CATARAN"}, {"johnathan", "JANATAN"}, {"jonathan", "JANATAN"}, {"john", "JAN"},
	{"teresa", "TARAS"}, {"theresa", "TARAS"}, {"jessica", "JASAC"}, {"joshua", "JAS"},
	{"lapher", "LAFAR"}, {"wiyh", "WY"}, {"macarthur", "MCARTAR"}, {"pheenard", "FANAD"},
	{"schmittie", "SNATY"}, {"knaqze", "NAGS"}, {"knokno", "NAN"}, {"knoko", "NAC"},
	{"macaw", "MC"}, {"", ""}, {"t", "T"}, {"s", "S"}, {"p", "P"}, {"k", "C"}, {"m", "M"},
	{"e", "E"}, {"pfeister", "FASTAR"}, {"sarah", "SAR"},
	// Commons Codec, full codes
	{"macintosh", "MCANT"}, {"knuth", "NAT"}, {"koehn", "CAN"}, {"phillipson", "FALAPSAN"},
	{"schoenhoeft", "SANAFT"}, {"mckee", "MCY"}, {"mackie", "MCY"}, {"heitschmidt", "HATSNAD"},
	{"bart", "BAD"}, {"hurd", "HAD"}, {"hunt", "HAD"}, {"westerlund", "WASTARLAD"},
	{"casstevens", "CASTAFAN"}, {"vasquez", "VASG"}, {"frazier", "FRASAR"}, {"bowman", "BANAN"},
	{"mcknight", "MCNAGT"}, {"rickert", "RACAD"}, {"deutsch", "DAT"}, {"westphal", "WASTFAL"},
	{"shriver", "SRAVAR"}, {"kuhl", "CAL"}, {"rawson", "RASAN"}, {"jiles", "JAL"},
	{"carraway", "CARY"}, {"yamada", "YANAD"}, {"odaniel", "ODANAL"}, {"odonnel", "ODANAL"},
	{"cory", "CARY"}, {"corey", "CARY"}, {"kory", "CARY"}, {"fuzzy", "FASY"},
	{"macx", "MCX"}, {"knx", "NX"}, {"kx", "CX"}, {"phx", "FX"}, {"pfx", "FX"}, {"schx", "SX"},
	{"xee", "XY"}, {"xie", "XY"}, {"xdt", "XD"}, {"xrt", "XD"}, {"xrd", "XD"}, {"xnt", "XD"},
	{"xnd", "XD"}, {"xev", "XAF"}, {"xax", "XAX"}, {"xex", "XAX"}, {"xix", "XAX"}, {"xox", "XAX"},
	{"xux", "XAX"}, {"xq", "XG"}, {"xz", "X"}, {"xm", "XN"}, {"xs", "X"}, {"xss", "X"},
	{"xay", "XY"}, {"xays", "XY"}, {"xa", "X"}, {"xas", "X"},
	// Commons Codec, six-letter codes
	{"brian", "BRAN"}, {"brown", "BRAN"}, {"brun", "BRAN"}, {"capp", "CAP"}, {"cope", "CAP"},
	{"copp", "CAP"}, {"kipp", "CAP"}, {"dent", "DAD"}, {"dane", "DAN"}, {"dean", "DAN"},
	{"dionne", "DAN"}, {"phil", "FAL"}, {"schmidt", "SNAD"}, {"smith", "SNAT"}, {"schmit", "SNAT"},
	{"kobwick", "CABWAC"}, {"kocher", "CACAR"}, {"fesca", "FASC"}, {"shom", "SAN"}, {"ohlo", "OL"},
	{"uhu", "UH"}, {"um", "UN"}, {"trueman", "TRANAN"}, {"truman", "TRANAN"},
}

// Published vectors we do not follow, and why.
var nysiisDisagreements = []struct{ in, theirs, want, why string }{
	{"bosch", "BAS", "B", "jellyfish appends SSS for SCH at once; in Taft's loop SCH is rewritten " +
		"to SSS in the name and one letter is added at a time (B A S, the next two S collapse), " +
		"then the final S and then the final A are dropped, as Commons Codec does for XSS → X"},
}

// nysiisFull returns the whole NYSIIS code of name.
func nysiisFull(name string) string {
	buf := make([]byte, len(name))
	return string(buf[:nysiis(buf, name)])
}

func TestNYSIIS(t *testing.T) {
	for _, v := range nysiisVectors {
		if got := nysiisFull(v.in); got != v.want {
			t.Errorf("NYSIIS(%q) = %q, want %q", v.in, got, v.want)
		}
		want6 := v.want[:min(NYSIISLen, len(v.want))]
		if got := NYSIISOf(v.in).String(); got != want6 {
			t.Errorf("NYSIISOf(%q) = %q, want %q", v.in, got, want6)
		}
		if got := nysiisRef(v.in); got != v.want {
			t.Errorf("nysiisRef(%q) = %q, want %q", v.in, got, v.want)
		}
	}
	for _, v := range nysiisDisagreements {
		if got := nysiisFull(v.in); got != v.want {
			t.Errorf("NYSIIS(%q) = %q, want %q (published: %q)", v.in, got, v.want, v.theirs)
		}
	}
	// Commons Codec testTrueVariant: the six-letter code of WESTERLUND.
	if got := NYSIISOf("westerlund").String(); got != "WASTAR" {
		t.Errorf("NYSIISOf(westerlund) = %q, want WASTAR", got)
	}
	if NYSIISOf("") != (NYSIIS{}) || NYSIISOf("-' \xff") != (NYSIIS{}) {
		t.Error("NYSIISOf of a name without letters is not the zero value")
	}
	// Bytes other than a-z are skipped.
	for in, want := range map[string]string{
		"o'daniel": "ODANAL", "mac arthur": "MCARTA", "\xffk-n-u-t-h\x00": "NAT", "KNUTH": "", "Knuth": "NAT",
	} {
		if got := NYSIISOf(in).String(); got != want {
			t.Errorf("NYSIISOf(%q) = %q, want %q", in, got, want)
		}
	}
	// The end rules apply to the whole code before truncation.
	long := "b" + strings.Repeat("a", 50) + "t"
	if got := NYSIISOf(long).String(); got != "BAT" {
		t.Errorf("NYSIISOf(b a…a t) = %q, want BAT", got)
	}
	if got := NYSIISOf("montgomery").String(); got != "MANTGA" {
		t.Errorf("NYSIISOf(montgomery) = %q, want MANTGA", got)
	}
}

// nysiisRef is a plain, allocating transcription of the rules documented
// on nysiis, kept as a second reading to check the streaming code against.
func nysiisRef(name string) string {
	var s []byte
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'a' && c <= 'z' {
			s = append(s, c-'a'+'A')
		}
	}
	if len(s) == 0 {
		return ""
	}
	str := string(s)
	switch {
	case strings.HasPrefix(str, "MAC"):
		s[1] = 'C'
	case strings.HasPrefix(str, "KN"):
		s[0] = 'N'
	case strings.HasPrefix(str, "K"):
		s[0] = 'C'
	case strings.HasPrefix(str, "PH"), strings.HasPrefix(str, "PF"):
		s[0], s[1] = 'F', 'F'
	case strings.HasPrefix(str, "SCH"):
		s[1], s[2] = 'S', 'S'
	}
	str = string(s)
	for _, suf := range []string{"EE", "IE", "DT", "RT", "RD", "NT", "ND"} {
		if len(s) >= 2 && strings.HasSuffix(str, suf) {
			s = s[:len(s)-1]
			s[len(s)-1] = map[byte]byte{'E': 'Y', 'T': 'D', 'D': 'D'}[suf[1]]
			break
		}
	}
	at := func(i int) byte {
		if i < 0 || i >= len(s) {
			return 0
		}
		return s[i]
	}
	vowel := func(c byte) bool { return c != 0 && strings.IndexByte("AEIOU", c) >= 0 }
	key := []byte{s[0]}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == 'E' && at(i+1) == 'V':
			s[i], s[i+1] = 'A', 'F'
		case vowel(c):
			s[i] = 'A'
		case c == 'Q':
			s[i] = 'G'
		case c == 'Z':
			s[i] = 'S'
		case c == 'M':
			s[i] = 'N'
		case c == 'K' && at(i+1) == 'N':
			s[i] = 'N'
		case c == 'K':
			s[i] = 'C'
		case c == 'S' && at(i+1) == 'C' && at(i+2) == 'H':
			s[i+1], s[i+2] = 'S', 'S'
		case c == 'P' && at(i+1) == 'H':
			s[i], s[i+1] = 'F', 'F'
		case c == 'H' && (!vowel(at(i-1)) || !vowel(at(i+1))):
			s[i] = s[i-1]
		case c == 'W' && vowel(at(i-1)):
			s[i] = s[i-1]
		}
		if s[i] != key[len(key)-1] {
			key = append(key, s[i])
		}
	}
	if len(key) > 1 && key[len(key)-1] == 'S' {
		key = key[:len(key)-1]
	}
	if len(key) > 2 && string(key[len(key)-2:]) == "AY" {
		key = append(key[:len(key)-2], 'Y')
	}
	if len(key) > 1 && key[len(key)-1] == 'A' {
		key = key[:len(key)-1]
	}
	return string(key)
}

// randomName returns a random string, mostly of letters (weighted towards
// the ones the NYSIIS rules care about), some other bytes.
func randomName(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz" + "aeiouhwkmnpsch" + "aeiouhwkmnpsch" + " '-\xff"
	b := make([]byte, rng.IntN(20))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func TestNYSIISMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		s := randomName(rng)
		want := nysiisRef(s)
		if got := nysiisFull(s); got != want {
			t.Fatalf("NYSIIS(%q) = %q, reference %q", s, got, want)
		}
		if got, want6 := NYSIISOf(s).String(), want[:min(NYSIISLen, len(want))]; got != want6 {
			t.Fatalf("NYSIISOf(%q) = %q, want %q", s, got, want6)
		}
	}
}

func TestPhoneticAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	long := strings.Repeat("montgomery ", 20)
	for _, name := range []string{"", "ashcraft", "montgomery", "schoenhoeft", long} {
		if n := testing.AllocsPerRun(200, func() { _ = SoundexOf(name) }); n != 0 {
			t.Errorf("SoundexOf(%q) allocates %.1f times", name, n)
		}
		if n := testing.AllocsPerRun(200, func() { _ = NYSIISOf(name) }); n != 0 {
			t.Errorf("NYSIISOf(%q) allocates %.1f times", name, n)
		}
	}
}

// lettersOnly returns the a-z bytes of s.
func lettersOnly(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= 'a' && s[i] <= 'z' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func phoneticSeeds(f *testing.F) {
	for _, v := range soundexVectors {
		f.Add(v.in)
	}
	for _, v := range nysiisVectors {
		f.Add(v.in)
	}
	f.Add("\xffé-é")
	f.Add("o'brien smith-jones")
	f.Add("PFISTER")
	f.Add(strings.Repeat("sch", 30) + "ay")
}

func FuzzSoundex(f *testing.F) {
	phoneticSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		code := SoundexOf(s)
		if code != SoundexOf(s) {
			t.Fatalf("SoundexOf(%q) not deterministic", s)
		}
		letters := lettersOnly(s)
		if code != SoundexOf(letters) {
			t.Fatalf("SoundexOf(%q) = %q, but %q on its letters %q", s, code, SoundexOf(letters), letters)
		}
		if letters == "" {
			if code != (Soundex{}) {
				t.Fatalf("SoundexOf(%q) = %q, want the zero value", s, code)
			}
			return
		}
		if code[0] != letters[0]-'a'+'A' {
			t.Fatalf("SoundexOf(%q) = %q: does not start with %c", s, code, letters[0]-'a'+'A')
		}
		for _, d := range code[1:] {
			if d < '0' || d > '6' {
				t.Fatalf("SoundexOf(%q) = %q", s, code)
			}
		}
	})
}

func FuzzNYSIIS(f *testing.F) {
	phoneticSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		code := NYSIISOf(s)
		if code != NYSIISOf(s) {
			t.Fatalf("NYSIISOf(%q) not deterministic", s)
		}
		letters := lettersOnly(s)
		if code != NYSIISOf(letters) {
			t.Fatalf("NYSIISOf(%q) = %q, but %q on its letters %q", s, code, NYSIISOf(letters), letters)
		}
		ref := nysiisRef(s)
		if got := code.String(); got != ref[:min(NYSIISLen, len(ref))] {
			t.Fatalf("NYSIISOf(%q) = %q, reference %q", s, got, ref)
		}
		// Letters, then zero padding.
		n := len(code.String())
		for i, c := range code {
			if (i < n) != (c >= 'A' && c <= 'Z') {
				t.Fatalf("NYSIISOf(%q) = %q", s, code)
			}
		}
		if letters == "" {
			if code != (NYSIIS{}) {
				t.Fatalf("NYSIISOf(%q) = %q, want the zero value", s, code)
			}
			return
		}
		// The first letter is the name's, upper-cased, except where rule 1
		// (K, KN, PH, PF) or, for a two-letter name, rule 2 rewrites it.
		first := letters[0] - 'a' + 'A'
		switch {
		case len(letters) == 2 && strings.Contains(" ee ie dt rt rd nt nd ", " "+letters+" "):
			first = map[byte]byte{'e': 'Y', 't': 'D', 'd': 'D'}[letters[1]]
		case strings.HasPrefix(letters, "kn"):
			first = 'N'
		case letters[0] == 'k':
			first = 'C'
		case strings.HasPrefix(letters, "ph"), strings.HasPrefix(letters, "pf"):
			first = 'F'
		}
		if code[0] != first {
			t.Fatalf("NYSIISOf(%q) = %q: does not start with %c", s, code, first)
		}
	})
}

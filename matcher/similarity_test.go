package matcher

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/xrash/smetrics"
)

func TestJaroWinklerVectors(t *testing.T) {
	// Winkler's and the US Census examples, as commonly published (and in
	// jellyfish's testdata/jaro_winkler.csv, MIT), to three places.
	check := func(a, b string, jaro, jw float64) {
		t.Helper()
		if jaro >= 0 && math.Abs(Jaro(a, b)-jaro) > 0.0005 {
			t.Errorf("Jaro(%q, %q) = %.4f, want %.3f", a, b, Jaro(a, b), jaro)
		}
		if math.Abs(JaroWinkler(a, b)-jw) > 0.0005 {
			t.Errorf("JaroWinkler(%q, %q) = %.4f, want %.3f", a, b, JaroWinkler(a, b), jw)
		}
		if JaroWinkler(a, b) != JaroWinkler(b, a) && len(a) == len(b) {
			t.Errorf("JaroWinkler(%q, %q) not symmetric", a, b)
		}
	}
	check("martha", "marhta", 0.944, 0.961)
	check("dwayne", "duane", 0.822, 0.840)
	check("dixon", "dicksonx", 0.767, 0.813)
	check("jellyfish", "smellyfish", 0.896, 0.896)
	check("crate", "trace", 0.733, 0.733)
	check("william", "williams", -1, 0.975)
	check("abc", "xyz", 0, 0)
	check("a", "a", 1, 1)
	check("", "", 1, 1)
	check("", "foo", 0, 0)
}

// Our allocation-free version agrees with smetrics on ASCII names.
func TestJaroWinklerAgreesWithSmetrics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"margaret", "margret", "peggy", "thomson", "thompson", "obrien", "obrian", "smith", "smyth",
		"mcdonald", "macdonald", "jon", "john", "jonathan", "a", "ab", "ba", "abcdefghijklmnopqrstuvwxyz"}
	word := func() string {
		b := make([]byte, 1+rng.IntN(14))
		for i := range b {
			b[i] = byte('a' + rng.IntN(6))
		}
		return string(b)
	}
	for range 5000 {
		names = append(names, word())
	}
	for i := 0; i+1 < len(names); i++ {
		a, b := names[i], names[i+1]
		if got, want := Jaro(a, b), smetrics.Jaro(a, b); math.Abs(got-want) > 1e-12 {
			t.Fatalf("Jaro(%q, %q) = %v, smetrics %v", a, b, got, want)
		}
		if got, want := JaroWinkler(a, b), smetrics.JaroWinkler(a, b, 0.7, 4); math.Abs(got-want) > 1e-12 {
			t.Fatalf("JaroWinkler(%q, %q) = %v, smetrics %v", a, b, got, want)
		}
	}
}

func TestJaroWinklerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	if n := testing.AllocsPerRun(100, func() { JaroWinkler("margaret", "margret") }); n != 0 {
		t.Errorf("JaroWinkler allocates %.0f times", n)
	}
}

func FuzzJaroWinkler(f *testing.F) {
	f.Add("martha", "marhta")
	f.Add("", "x")
	f.Fuzz(func(t *testing.T, a, b string) {
		s := JaroWinkler(a, b)
		if s < 0 || s > 1 || math.IsNaN(s) {
			t.Fatalf("JaroWinkler(%q, %q) = %v", a, b, s)
		}
		if JaroWinkler(a, a) != 1 {
			t.Fatalf("JaroWinkler(%q, itself) = %v", a, JaroWinkler(a, a))
		}
		if math.Abs(Jaro(a, b)-Jaro(b, a)) > 1e-9 {
			t.Fatalf("Jaro(%q, %q) not symmetric", a, b)
		}
	})
}

func BenchmarkJaroWinkler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		JaroWinkler("margaret", "margret")
	}
}

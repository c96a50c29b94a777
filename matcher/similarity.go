package matcher

import "math/bits"

// Jaro and Jaro-Winkler similarity of names, byte by byte (normalised names
// are ASCII).
//
// Strings of up to 64 bytes, which is every name in practice, are compared
// without allocating: the matched positions of each string are kept in a
// uint64 bit set. Longer strings take a slower path that allocates two
// []bool, so that the answer is exact for any length (nothing is
// truncated).
//
// The results are those of github.com/xrash/smetrics's Jaro and of its
// JaroWinkler(a, b, 0.7, 4) (similarity_test.go checks this, along with
// published vectors). We do not call it: it is about two and a half times
// slower, and its two []bool go to the heap for strings longer than 32 bytes
// (Go 1.26 keeps smaller ones on the stack).

// jaroWindow is the distance within which equal bytes count as matching:
// half the longer length, less one.
func jaroWindow(la, lb int) int {
	return max(0, max(la, lb)/2-1)
}

// Jaro returns the Jaro similarity of a and b (Jaro 1989), in [0, 1]: 1 for
// equal strings (both empty included), 0 when they have no byte in common
// or just one is empty.
//
// A byte of a matches the first not yet matched equal byte of b at most
// jaroWindow positions away; with m matches, of which t/2 are out of order
// (t the number of positions at which the matched bytes of a and of b, each
// read in order, differ; t/2 rounded down, as in Winkler's strcmp95), Jaro
// is (m/len(a) + m/len(b) + (m - t/2)/m) / 3.
func Jaro(a, b string) float64 {
	if a == b {
		return 1
	}
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	if len(a) > 64 || len(b) > 64 {
		return jaroLong(a, b)
	}
	w := jaroWindow(len(a), len(b))
	var ma, mb uint64 // matched positions of a and of b
	m := 0
	for i := 0; i < len(a); i++ {
		c := a[i]
		for j, hi := max(0, i-w), min(len(b)-1, i+w); j <= hi; j++ {
			if b[j] == c && mb&(1<<j) == 0 {
				ma |= 1 << i
				mb |= 1 << j
				m++
				break
			}
		}
	}
	if m == 0 {
		return 0
	}
	// Walk the matched positions of a and b in step.
	t := 0
	for ma != 0 {
		if a[bits.TrailingZeros64(ma)] != b[bits.TrailingZeros64(mb)] {
			t++
		}
		ma &= ma - 1
		mb &= mb - 1
	}
	return jaroScore(m, t, len(a), len(b))
}

func jaroScore(m, t, la, lb int) float64 {
	fm := float64(m)
	return (fm/float64(la) + fm/float64(lb) + (fm-float64(t/2))/fm) / 3
}

// jaroLong is Jaro for strings longer than 64 bytes. It allocates.
func jaroLong(a, b string) float64 {
	w := jaroWindow(len(a), len(b))
	ma, mb := make([]bool, len(a)), make([]bool, len(b))
	m := 0
	for i := 0; i < len(a); i++ {
		c := a[i]
		for j, hi := max(0, i-w), min(len(b)-1, i+w); j <= hi; j++ {
			if b[j] == c && !mb[j] {
				ma[i], mb[j] = true, true
				m++
				break
			}
		}
	}
	if m == 0 {
		return 0
	}
	t, j := 0, 0
	for i := 0; i < len(a); i++ { // bytes, not runes
		if !ma[i] {
			continue
		}
		for !mb[j] {
			j++
		}
		if a[i] != b[j] {
			t++
		}
		j++
	}
	return jaroScore(m, t, len(a), len(b))
}

// JaroWinkler returns the Jaro-Winkler similarity of a and b (Winkler 1990),
// in [0, 1]: when Jaro exceeds 0.7, it is raised by 0.1 × (1 − Jaro) for
// each of the first (up to four) bytes that a and b have in common. Strings
// of up to 64 bytes are compared without allocating.
func JaroWinkler(a, b string) float64 {
	j := Jaro(a, b)
	if j <= 0.7 {
		return j
	}
	p := 0
	for p < 4 && p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	return j + 0.1*float64(p)*(1-j)
}

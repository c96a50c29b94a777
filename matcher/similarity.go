package matcher

import "math/bits"

// Jaro and Jaro-Winkler similarity over bytes (names here are normalised
// ASCII). These are written to run without allocating: strings up to 64
// bytes keep their matched positions in two uint64 bit sets. They agree with
// github.com/xrash/smetrics (Jaro, and JaroWinkler with boost threshold 0.7
// and prefix 4) to 1e-12 on ASCII, which similarity_test.go checks along with
// the published vectors; smetrics allocates two slices per call, too many
// for the lookup path. Longer strings are compared on their first 64 bytes.

// Jaro returns the Jaro similarity of a and b: 1 for equal strings, 0 for
// strings with nothing in common (or one empty).
func Jaro(a, b string) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	if len(a) > 64 {
		a = a[:64]
	}
	if len(b) > 64 {
		b = b[:64]
	}
	window := max(len(a), len(b))/2 - 1
	if window < 0 {
		window = 0
	}
	var ma, mb uint64 // matched positions
	matches := 0
	for i := 0; i < len(a); i++ {
		lo, hi := max(0, i-window), min(len(b)-1, i+window)
		for j := lo; j <= hi; j++ {
			if mb&(1<<j) == 0 && a[i] == b[j] {
				ma |= 1 << i
				mb |= 1 << j
				matches++
				break
			}
		}
	}
	if matches == 0 {
		return 0
	}
	// Transpositions: matched characters of a and b, in order, that differ.
	half := 0
	for ma != 0 {
		i, j := bits.TrailingZeros64(ma), bits.TrailingZeros64(mb)
		if a[i] != b[j] {
			half++
		}
		ma &= ma - 1
		mb &= mb - 1
	}
	m := float64(matches)
	t := float64(half / 2)
	return (m/float64(len(a)) + m/float64(len(b)) + (m-t)/m) / 3
}

// JaroWinkler returns the Jaro-Winkler similarity (Winkler 1990): Jaro
// boosted by 0.1 for each of up to four common leading bytes, when Jaro
// exceeds 0.7.
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

package matcher

// Phonetic codes for normalised names (lowercase a-z; other bytes are
// skipped). Both are written here rather than taken from
// github.com/xrash/smetrics, whose Soundex fails the standard vectors: it
// compares letters rather than their codes when collapsing runs (Pfister
// comes out P123, not P236), does not let H and W join letters of one code
// (Ashcraft A226, not A261), and panics on an empty string. phonetic_test.go
// records its answers beside ours.

// Soundex is an American Soundex code ("R163"); the zero value means no code.
type Soundex [4]byte

// soundexCodes maps a-z to Soundex digits; 0 for vowels and y (which break a
// run of one code), 'h' for h and w (which do not).
var soundexCodes = [26]byte{
	'a' - 'a': 0, 'b' - 'a': '1', 'c' - 'a': '2', 'd' - 'a': '3', 'e' - 'a': 0, 'f' - 'a': '1',
	'g' - 'a': '2', 'h' - 'a': 'h', 'i' - 'a': 0, 'j' - 'a': '2', 'k' - 'a': '2', 'l' - 'a': '4',
	'm' - 'a': '5', 'n' - 'a': '5', 'o' - 'a': 0, 'p' - 'a': '1', 'q' - 'a': '2', 'r' - 'a': '6',
	's' - 'a': '2', 't' - 'a': '3', 'u' - 'a': 0, 'v' - 'a': '1', 'w' - 'a': 'h', 'x' - 'a': '2',
	'y' - 'a': 0, 'z' - 'a': '2',
}

// SoundexOf returns the American Soundex code of name, as the US National
// Archives define it: the first letter, then the digits of the following
// consonants, adjacent letters of one digit (also across H and W, and
// including the first letter) coded once, vowels separating, padded with
// zeros to four characters.
func SoundexOf(name string) Soundex {
	var s Soundex
	n := 0
	var last byte
	for i := 0; i < len(name) && n < 4; i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c < 'a' || c > 'z' {
			continue
		}
		code := soundexCodes[c-'a']
		if n == 0 {
			s[0] = c - ('a' - 'A')
			n = 1
			last = code
			continue
		}
		switch code {
		case 'h': // h and w: skipped, the run goes on
			continue
		case 0: // vowels and y end a run
			last = 0
			continue
		}
		if code != last {
			s[n] = code
			n++
		}
		last = code
	}
	if n == 0 {
		return Soundex{}
	}
	for ; n < 4; n++ {
		s[n] = '0'
	}
	return s
}

func (s Soundex) String() string {
	if s[0] == 0 {
		return ""
	}
	return string(s[:])
}

// NYSIIS is a NYSIIS code truncated to six letters, as Taft's original
// specifies, zero-padded; the zero value means no code.
type NYSIIS [6]byte

// NYSIISOf returns the NYSIIS code of name truncated to six letters.
func NYSIISOf(name string) NYSIIS {
	var buf [48]byte
	var code NYSIIS
	copy(code[:], appendNYSIIS(buf[:0], name))
	return code
}

func (c NYSIIS) String() string {
	n := 0
	for n < len(c) && c[n] != 0 {
		n++
	}
	return string(c[:n])
}

func isVowel(c byte) bool { return c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U' }

// appendNYSIIS appends the full (untruncated) NYSIIS code of name to dst,
// following Taft (1970): prefix rules (MAC→MCC, KN→NN, K→C, PH/PF→FF,
// SCH→SSS), suffix rules (EE/IE→Y; DT, RT, RD, NT, ND→D), then a scan that
// maps vowels to A (EV→AF), Q→G, Z→S, M→N, K→C (KN→N), SCH→SSS, PH→FF, an
// H next to a non-vowel and a W after a vowel to the letter before, keeping
// a letter only if it differs from the last one kept; finally a trailing S,
// and then a trailing A, are dropped and a trailing AY becomes Y. Names
// longer than 40 letters are read up to their 40th letter.
func appendNYSIIS(dst []byte, name string) []byte {
	var w [40]byte
	n := 0
	for i := 0; i < len(name) && n < len(w); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c >= 'A' && c <= 'Z' {
			w[n] = c
			n++
		}
	}
	if n == 0 {
		return dst
	}
	s := w[:n]
	has := func(at int, p string) bool {
		if at < 0 || at+len(p) > len(s) {
			return false
		}
		return string(s[at:at+len(p)]) == p
	}
	// Prefixes.
	switch {
	case has(0, "MAC"):
		s[1] = 'C'
	case has(0, "KN"):
		s[0] = 'N'
	case has(0, "K"):
		s[0] = 'C'
	case has(0, "PH"), has(0, "PF"):
		s[0], s[1] = 'F', 'F'
	case has(0, "SCH"):
		s[1], s[2] = 'S', 'S'
	}
	// Suffixes.
	if l := len(s); l >= 2 {
		switch string(s[l-2:]) {
		case "EE", "IE":
			s[l-2] = 'Y'
			s = s[:l-1]
		case "DT", "RT", "RD", "NT", "ND":
			s[l-2] = 'D'
			s = s[:l-1]
		}
	}
	start := len(dst)
	dst = append(dst, s[0])
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 'E' && has(i, "EV"):
			s[i], s[i+1] = 'A', 'F'
		case isVowel(c):
			s[i] = 'A'
		case c == 'Q':
			s[i] = 'G'
		case c == 'Z':
			s[i] = 'S'
		case c == 'M':
			s[i] = 'N'
		case c == 'K':
			if has(i+1, "N") {
				s[i] = 'N'
			} else {
				s[i] = 'C'
			}
		case has(i, "SCH"):
			s[i+1], s[i+2] = 'S', 'S'
		case has(i, "PH"):
			s[i], s[i+1] = 'F', 'F'
		case c == 'H' && (!isVowel(s[i-1]) || i+1 == len(s) || !isVowel(s[i+1])):
			s[i] = s[i-1]
		case c == 'W' && isVowel(s[i-1]):
			s[i] = s[i-1]
		}
		if s[i] != dst[len(dst)-1] {
			dst = append(dst, s[i])
		}
	}
	code := dst[start:]
	if len(code) > 1 && code[len(code)-1] == 'S' {
		code = code[:len(code)-1]
	}
	if len(code) > 1 && code[len(code)-2] == 'A' && code[len(code)-1] == 'Y' {
		code[len(code)-2] = 'Y'
		code = code[:len(code)-1]
	}
	if len(code) > 1 && code[len(code)-1] == 'A' {
		code = code[:len(code)-1]
	}
	return dst[:start+len(code)]
}

package matcher

// Phonetic codes of normalised names: American Soundex and NYSIIS.
//
// Input is a normalised name, lowercase ASCII a-z; every other byte
// (spaces, hyphens, upper case, non-ASCII) is skipped as if it were not
// there. Both codes are computed without allocating and returned as small
// arrays, for the lookup path.
//
// Both are written here from the published rules. github.com/xrash/smetrics
// has a Soundex, but it does not follow the standard: it collapses adjacent
// identical letters rather than adjacent letters with the same digit
// (Pfister comes out P123, not P236; Jackson J222, not J250), it does not
// join letters of one digit across H or W (Ashcraft A226, not A261), it
// returns a string (an allocation per call) and it panics on the empty
// string. phonetic_test.go records its answers beside ours.

// Soundex is an American Soundex code such as "R163": an upper-case letter
// and three digits. The zero value is the code of a name with no letters.
type Soundex [4]byte

// Soundex classes of a-z: a digit, or one of the two kinds of letter that
// are not coded.
const (
	sdxVowel = 0   // a e i o u y: not coded, and they end a run of one digit
	sdxHW    = '-' // h w: not coded, and letters either side of them are one run
)

var soundexDigits = [26]byte{
	sdxVowel, '1', '2', '3', sdxVowel, '1', '2', sdxHW, sdxVowel, // a-i
	'2', '2', '4', '5', '5', sdxVowel, '1', '2', '6', // j-r
	'2', '3', sdxVowel, '1', sdxHW, '2', sdxVowel, '2', // s-z
}

// SoundexOf returns the American Soundex code of name, by the rules of the
// US National Archives ("The Soundex Indexing System"): keep the first
// letter; code the following letters b f p v as 1, c g j k q s x z as 2,
// d t as 3, l as 4, m n as 5, r as 6; do not code vowels, y, h and w;
// letters side by side with the same digit, including the first letter and
// letters separated only by h or w, are coded once, while a vowel (or y)
// between them makes the second one coded again; stop at three digits and
// pad with zeros. So Ashcraft is A261, Pfister P236, Tymczak T522.
//
// Name prefixes (Van, De, Mac …) get no special treatment: NARA codes those
// both with and without the prefix, which is the caller's business.
func SoundexOf(name string) Soundex {
	var s Soundex
	n := 0
	var run byte // class of the last letter that counts for runs
	for i := 0; i < len(name); i++ {
		c := name[i] - 'a'
		if c >= 26 { // not a-z (bytes below 'a' wrap around)
			continue
		}
		d := soundexDigits[c]
		if n == 0 {
			s[0] = 'A' + c
			n = 1
			run = d
			continue
		}
		switch d {
		case sdxHW:
			continue
		case sdxVowel:
			run = sdxVowel
			continue
		}
		if d != run {
			s[n] = d
			n++
			if n == len(s) {
				return s
			}
		}
		run = d
	}
	if n == 0 {
		return s
	}
	for ; n < len(s); n++ {
		s[n] = '0'
	}
	return s
}

// String returns the code ("A261"), or "" for the zero value. For tests and
// debugging; it allocates.
func (s Soundex) String() string {
	if s[0] == 0 {
		return ""
	}
	return string(s[:])
}

// NYSIISLen is the length to which NYSIIS codes are truncated, as in Taft's
// original.
const NYSIISLen = 6

// NYSIIS is a NYSIIS code truncated to NYSIISLen letters; shorter codes are
// padded with zero bytes. The zero value is the code of a name with no
// letters.
type NYSIIS [NYSIISLen]byte

// NYSIISOf returns the NYSIIS code of name (Taft 1970), truncated to six
// letters. See nysiis for the rules.
func NYSIISOf(name string) NYSIIS {
	var c NYSIIS
	nysiis(c[:], name)
	return c
}

// String returns the code without its padding ("MCANT"). For tests and
// debugging; it allocates.
func (c NYSIIS) String() string {
	n := 0
	for n < len(c) && c[n] != 0 {
		n++
	}
	return string(c[:n])
}

func nysiisVowel(c byte) bool { return c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U' }

// nysiis computes the NYSIIS code of name, as R. L. Taft, "Name Search
// Techniques", New York State Identification and Intelligence System,
// Special Report No. 1 (1970) gives it (in the step-by-step form quoted on
// Wikipedia's NYSIIS page). It writes the first len(dst) letters of the code
// to dst, clears the rest of dst, and returns the length of the whole code,
// which may be longer than dst. The name may be of any length; nothing is
// allocated.
//
// The letters of name (a-z, upper-cased; all other bytes skipped) are
// rewritten in place, then scanned:
//
//  1. A name starting MAC becomes MCC…, KN → NN, K → C, PH or PF → FF,
//     SCH → SSS.
//  2. A name ending EE or IE ends Y instead, one ending DT, RT, RD, NT or ND
//     ends D instead (one letter shorter).
//  3. The first letter of the code is the first letter of the name.
//  4. Each following letter, in turn, is rewritten by the first rule that
//     fits: a vowel becomes A, but E followed by V makes EV → AF; Q → G,
//     Z → S, M → N; K → N before N, else C; SCH → SSS; PH → FF; H becomes
//     the letter before it if that letter or the next is not a vowel (the
//     end of the name is not a vowel); W after a vowel becomes that vowel
//     (as rewritten: A, or the first letter). Rules look at the letters as
//     already rewritten. The (one) letter now at the current position is
//     added to the code unless it equals the code's last letter.
//  5. A final S is dropped; then a final AY becomes Y; then a final A is
//     dropped. These never remove the code's first letter.
//
// The code is truncated afterwards (NYSIISOf), so the end rules see the whole
// code.
//
// Deviations and choices, where the published variants differ: rules that
// rewrite several letters (SCH → SSS, PH → FF, EV → AF) rewrite them in the
// name and only the current letter is added, as Taft's loop does, so
// Bosch is B (BSSS collapses to BAS, then S and A are dropped), where
// jellyfish, which appends all three S, says BAS; KN at the start becomes
// NN, not N; W after a vowel becomes that (rewritten) vowel, not always A.
// Vowels are A E I O U only: Y is a consonant here, as in Taft.
func nysiis(dst []byte, name string) int {
	clear(dst)
	// Pass 1: the number of letters, the first three and the last two.
	n := 0
	var head [3]byte
	var last [2]byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 'a' || c > 'z' {
			continue
		}
		c -= 'a' - 'A'
		if n < len(head) {
			head[n] = c
		}
		last[0], last[1] = last[1], c
		n++
	}
	if n == 0 {
		return 0
	}
	// Rule 1, on the first letters. head is zero past the name's end, so
	// no pattern matches there.
	switch {
	case head == [3]byte{'M', 'A', 'C'}:
		head[1] = 'C'
	case head[0] == 'K' && head[1] == 'N':
		head[0] = 'N'
	case head[0] == 'K':
		head[0] = 'C'
	case head[0] == 'P' && (head[1] == 'H' || head[1] == 'F'):
		head[0], head[1] = 'F', 'F'
	case head == [3]byte{'S', 'C', 'H'}:
		head[1], head[2] = 'S', 'S'
	}
	// Rule 2, on the last two letters as rule 1 left them.
	m := n // letters in the name after rule 2
	var final byte
	if n >= 2 {
		if n-2 < len(head) {
			last[0] = head[n-2]
		}
		if n-1 < len(head) {
			last[1] = head[n-1]
		}
		switch uint16(last[0])<<8 | uint16(last[1]) {
		case 'E'<<8 | 'E', 'I'<<8 | 'E':
			final = 'Y'
		case 'D'<<8 | 'T', 'R'<<8 | 'T', 'R'<<8 | 'D', 'N'<<8 | 'T', 'N'<<8 | 'D':
			final = 'D'
		}
		if final != 0 {
			m = n - 1
		}
	}
	r := nysiisReader{name: name, m: m, head: head, final: final}
	var k nysiisKey
	k.dst = dst
	// w holds the name at positions p-1, p, p+1, p+2 around the current
	// position p; 0 past either end. Rules rewrite w in place.
	var w [4]byte
	w[1], w[2], w[3] = r.next(), r.next(), r.next()
	k.add(w[1]) // rule 3
	for {
		w[0], w[1], w[2], w[3] = w[1], w[2], w[3], r.next()
		c := w[1]
		if c == 0 {
			break
		}
		switch {
		case nysiisVowel(c):
			if c == 'E' && w[2] == 'V' {
				w[2] = 'F'
			}
			w[1] = 'A'
		case c == 'Q':
			w[1] = 'G'
		case c == 'Z':
			w[1] = 'S'
		case c == 'M':
			w[1] = 'N'
		case c == 'K':
			if w[2] == 'N' {
				w[1] = 'N'
			} else {
				w[1] = 'C'
			}
		case c == 'S' && w[2] == 'C' && w[3] == 'H':
			w[2], w[3] = 'S', 'S'
		case c == 'P' && w[2] == 'H':
			w[1], w[2] = 'F', 'F'
		case c == 'H' && (!nysiisVowel(w[0]) || !nysiisVowel(w[2])):
			w[1] = w[0]
		case c == 'W' && nysiisVowel(w[0]):
			w[1] = w[0]
		}
		if w[1] != k.tail[2] {
			k.add(w[1])
		}
	}
	return k.finish()
}

// nysiisReader yields the letters of a name after rules 1 and 2, one at a
// time, then zeros.
type nysiisReader struct {
	name  string
	i     int     // next byte of name to read
	p     int     // position of the next letter
	m     int     // letters after rule 2
	head  [3]byte // the first three letters after rule 1
	final byte    // the last letter after rule 2, or 0 if rule 2 did not apply
}

func (r *nysiisReader) next() byte {
	if r.p >= r.m {
		return 0
	}
	var c byte
	for ; r.i < len(r.name); r.i++ {
		if b := r.name[r.i]; b >= 'a' && b <= 'z' {
			c = b - ('a' - 'A')
			r.i++
			break
		}
	}
	switch {
	case r.final != 0 && r.p == r.m-1:
		c = r.final
	case r.p < len(r.head):
		c = r.head[r.p]
	}
	r.p++
	return c
}

// nysiisKey collects a NYSIIS code: its first len(dst) letters in dst, its
// last three in tail, and its length.
type nysiisKey struct {
	dst  []byte
	n    int
	tail [3]byte // tail[2] is the last letter
}

func (k *nysiisKey) add(c byte) {
	if k.n < len(k.dst) {
		k.dst[k.n] = c
	}
	k.n++
	k.tail[0], k.tail[1], k.tail[2] = k.tail[1], k.tail[2], c
}

// finish applies rule 5 and returns the final length of the code.
func (k *nysiisKey) finish() int {
	// t[j] is the letter at position base+j of the code.
	t, base, n := k.tail, k.n-len(k.tail), k.n
	at := func(p int) byte { return t[p-base] }
	if n > 1 && at(n-1) == 'S' {
		n--
	}
	if n > 2 && at(n-2) == 'A' && at(n-1) == 'Y' {
		t[n-2-base] = 'Y'
		n--
	}
	if n > 1 && at(n-1) == 'A' {
		n--
	}
	for p := max(base, 0); p < k.n && p < len(k.dst); p++ {
		if p < n {
			k.dst[p] = t[p-base]
		} else {
			k.dst[p] = 0
		}
	}
	return n
}

package matcher

import (
	"unicode/utf8"
)

// Names are normalised to lowercase ASCII tokens separated by single spaces:
// diacritics folded (José = jose), apostrophes dropped (O'Brien = obrien),
// hyphens and other punctuation as separators (Smith-Jones = smith jones).
// Family names also merge prefix particles with what follows (O Brien =
// obrien, Mac Donald = mcdonald) and read Mac as Mc; given names lose leading
// titles (Mrs, Dr). Every function appends to dst and allocates only when dst
// is too small, so the lookup path can reuse a buffer.

// latinFold maps U+00C0..U+017F to ASCII. Entries of two letters are written
// as the first letter here and expanded by foldRune.
const latinFold = "" +
	"aaaaaaaceeeeiiiidnooooo*ouuuuyts" + // U+00C0..U+00DF (× at D7 → *)
	"aaaaaaaceeeeiiiidnooooo*ouuuuyty" + // U+00E0..U+00FF (÷ at F7 → *)
	"aaaaaaccccccccddddeeeeeeeeeegggg" + // U+0100..U+011F
	"gggghhhhiiiiiiiiiijjjjkkklllllll" + // U+0120..U+013F
	"lllnnnnnnnnnoooooooorrrrrrssssss" + // U+0140..U+015F
	"ssttttttuuuuuuuuuuuuwwyyyzzzzzzs" //   U+0160..U+017F

// foldRune returns the ASCII letters for r (lowercase), or "" if r is not a
// letter this package reads.
func foldRune(r rune) string {
	switch {
	case r >= 'a' && r <= 'z':
		return asciiLetters[r-'a' : r-'a'+1]
	case r >= 'A' && r <= 'Z':
		return asciiLetters[r-'A' : r-'A'+1]
	}
	switch r {
	case 'Æ', 'æ':
		return "ae"
	case 'Œ', 'œ':
		return "oe"
	case 'ß':
		return "ss"
	case 'Þ', 'þ':
		return "th"
	case 'Ĳ', 'ĳ':
		return "ij"
	}
	if r >= 0xC0 && r <= 0x17F {
		c := latinFold[r-0xC0]
		if c == '*' {
			return ""
		}
		return asciiLetters[c-'a' : c-'a'+1]
	}
	if r >= 0x1EA0 && r <= 0x1EF9 { // Vietnamese letters with tone marks (Latin Extended Additional)
		switch {
		case r <= 0x1EB7:
			return "a"
		case r <= 0x1EC7:
			return "e"
		case r <= 0x1ECB:
			return "i"
		case r <= 0x1EE3:
			return "o"
		case r <= 0x1EF1:
			return "u"
		}
		return "y"
	}
	return ""
}

// isCombiningMark reports the accents of decomposed text (NFD: "e" then
// U+0301), which some devices send: dropped, like the accents of composed
// letters, without separating the name.
func isCombiningMark(r rune) bool { return r >= 0x300 && r <= 0x36F }

const asciiLetters = "abcdefghijklmnopqrstuvwxyz"

// isApostrophe reports runes dropped without separating (O'Brien = OBrien).
func isApostrophe(r rune) bool {
	switch r {
	case '\'', '’', '‘', '`', '´', 'ʼ':
		return true
	}
	return false
}

// foldName appends the folded tokens of s to dst, single-space separated,
// with no leading or trailing space.
func foldName(dst []byte, s string) []byte {
	start := len(dst)
	pendingSpace := false
	for i := 0; i < len(s); {
		var r rune
		if c := s[i]; c < utf8.RuneSelf {
			r = rune(c)
			i++
		} else {
			var size int
			r, size = utf8.DecodeRuneInString(s[i:])
			i += size
		}
		if isApostrophe(r) || isCombiningMark(r) {
			continue
		}
		f := foldRune(r)
		if f == "" {
			pendingSpace = true
			continue
		}
		if pendingSpace && len(dst) > start {
			dst = append(dst, ' ')
		}
		pendingSpace = false
		dst = append(dst, f...)
	}
	return dst
}

// nextToken returns the token of b starting at i and the index after it.
func nextToken(b []byte, i int) (tok []byte, next int) {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' {
		j++
	}
	return b[i:j], j
}

// titles are dropped from the start of a given name. From libpostal's English
// personal titles (MIT), trimmed to those a caller or a record would use.
func isTitle(tok []byte) bool {
	switch string(tok) {
	case "mr", "mrs", "ms", "miss", "mx", "mister", "misses", "master", "madam", "madame",
		"dr", "doctor", "doc", "prof", "professor", "rev", "reverend", "revd", "fr", "father",
		"sister", "sr", "brother", "br", "sir", "dame", "lady", "lord", "capt", "captain",
		"col", "colonel", "maj", "major", "lt", "lieutenant", "sgt", "sergeant", "cllr", "hon", "rt":
		return true
	}
	return false
}

// isParticle reports family-name prefixes merged with the token after them.
func isParticle(tok []byte) bool {
	switch string(tok) {
	case "o", "mc", "mac", "m", "d", "de", "da", "di", "du", "del", "della", "der", "den",
		"van", "von", "le", "la", "st", "saint", "ap", "fitz", "ben", "bin", "al", "el":
		return true
	}
	return false
}

// isSuffix reports generational suffixes dropped from the end of a family name.
func isSuffix(tok []byte) bool {
	switch string(tok) {
	case "jr", "jnr", "junior", "sr", "snr", "senior", "ii", "iii", "iv":
		return true
	}
	return false
}

// NormaliseGiven appends the normalised given name(s) in s to dst: folded
// tokens with leading titles removed ("Mrs. Mary-Jane" → "mary jane").
func NormaliseGiven(dst []byte, s string) []byte {
	start := len(dst)
	dst = foldName(dst, s)
	// Drop leading titles, keeping at least one token.
	for {
		tok, next := nextToken(dst[start:], 0)
		if !isTitle(tok) || next >= len(dst)-start {
			break
		}
		n := copy(dst[start:], dst[start+next+1:])
		dst = dst[:start+n]
	}
	// Generational suffixes ("John Jnr") are not a second given name.
	return dropSuffixes(dst, start)
}

// dropSuffixes drops trailing generational suffixes (Jnr, Snr, II) from the
// tokens of dst after start, keeping at least one token.
func dropSuffixes(dst []byte, start int) []byte {
	for {
		end := len(dst)
		i := end
		for i > start && dst[i-1] != ' ' {
			i--
		}
		if i == start || !isSuffix(dst[i:end]) {
			break
		}
		dst = dst[:i-1]
	}
	return dst
}

// NormaliseFamily appends the normalised family name in s to dst: folded
// tokens with particles merged into the next token (O Brien → obrien, Van der
// Berg → vanderberg), a leading "mac" read as "mc" (MacDonald = McDonald),
// generational suffixes dropped. Double-barrelled parts stay separate tokens
// (Smith-Jones → "smith jones") so either part can match.
func NormaliseFamily(dst []byte, s string) []byte {
	start := len(dst)
	dst = foldName(dst, s)
	dst = dropSuffixes(dst, start)
	// Merge particles: remove the space after a particle token.
	w, run := start, start // run: where the token being written (merged so far) begins
	for r := start; r < len(dst); {
		tok, next := nextToken(dst, r)
		// Decide before the copy below, which may overwrite tok. A merged run
		// is a particle too if it spells one (M C → mc).
		particle := isParticle(tok)
		w += copy(dst[w:], tok)
		particle = particle || isParticle(dst[run:w])
		if next < len(dst) && particle {
			r = next + 1 // skip the space: join with the next token
			continue
		}
		if next < len(dst) {
			dst[w] = ' '
			w++
		}
		run = w
		r = next + 1
	}
	dst = dst[:w]
	// Read "mac" as "mc" at the start of each token that is long enough to be
	// a Gaelic patronymic (MacDonald, not Mack).
	for i := start; i < len(dst); {
		tok, next := nextToken(dst, i)
		if len(tok) >= 6 && tok[0] == 'm' && tok[1] == 'a' && tok[2] == 'c' {
			ts := next - len(tok) // drop the 'a' of "mac"
			copy(dst[ts+1:], dst[ts+2:])
			dst = dst[:len(dst)-1]
			next--
		}
		i = next + 1
	}
	return dst
}

package spm

import "strings"

// spaceSymbol is U+2581 LOWER ONE EIGHTH BLOCK, which stands for a space
// inside pieces.
const spaceSymbol = "\u2581"

// normalizer is sentencepiece's Normalizer: the precompiled charsmap,
// whitespace handling and the protection of user-defined symbols.
type normalizer struct {
	spec        normalizerSpec
	cmap        *charsMap // nil without a precompiled charsmap
	matcher     *trie     // user-defined symbols, nil when none
	suffixSpace bool      // trainer_spec.treat_whitespace_as_suffix
}

// oneCharLen is string_util::OneCharLen: the UTF-8 length the lead byte
// announces (1 for a stray continuation byte).
func oneCharLen(b byte) int {
	return int("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x02\x02\x03\x04"[b>>4])
}

func isTrail(b byte) bool { return b&0xc0 == 0x80 }

func validCodepoint(c rune) bool { return c < 0xd800 || (c >= 0xe000 && c <= 0x10ffff) }

// decodeUTF8 is string_util::DecodeUTF8: the code point at the start of s
// and its length; an invalid sequence gives (U+FFFD, 1).
func decodeUTF8(s string) (rune, int) {
	n := len(s)
	b0 := s[0]
	switch {
	case b0 < 0x80:
		return rune(b0), 1
	case n >= 2 && b0&0xe0 == 0xc0:
		c := rune(b0&0x1f)<<6 | rune(s[1]&0x3f)
		if isTrail(s[1]) && c >= 0x80 && validCodepoint(c) {
			return c, 2
		}
	case n >= 3 && b0&0xf0 == 0xe0:
		c := rune(b0&0x0f)<<12 | rune(s[1]&0x3f)<<6 | rune(s[2]&0x3f)
		if isTrail(s[1]) && isTrail(s[2]) && c >= 0x800 && validCodepoint(c) {
			return c, 3
		}
	case n >= 4 && b0&0xf8 == 0xf0:
		c := rune(b0&0x07)<<18 | rune(s[1]&0x3f)<<12 | rune(s[2]&0x3f)<<6 | rune(s[3]&0x3f)
		if isTrail(s[1]) && isTrail(s[2]) && isTrail(s[3]) && c >= 0x10000 && validCodepoint(c) {
			return c, 4
		}
	}
	return 0xfffd, 1
}

// validPrefix is string_util::IsValidDecodeUTF8: the length of the first
// character of s and whether it is valid (a literal U+FFFD counts as valid).
func validPrefix(s string) (int, bool) {
	c, n := decodeUTF8(s)
	return n, c != 0xfffd || n == 3
}

// normalizePrefix is Normalizer::NormalizePrefix: the normalized form of
// the longest rule matching the start of s and the bytes it consumes.
func (nz *normalizer) normalizePrefix(s string) (string, int) {
	if nz.matcher != nil {
		if n := nz.matcher.longestPrefix(s); n > 0 {
			return s[:n], n
		}
	}
	if nz.cmap != nil {
		if n, v := nz.cmap.longestPrefix(s); n > 0 {
			return nz.cmap.replacement(v), n
		}
	}
	n, ok := validPrefix(s)
	if !ok {
		return "\ufffd", 1
	}
	return s[:n], n
}

// normalize is Normalizer::Normalize without the alignment to the input.
func (nz *normalizer) normalize(input string) string {
	if input == "" {
		return ""
	}
	spec := &nz.spec
	if spec.removeExtraWhitespaces {
		for input != "" {
			p, n := nz.normalizePrefix(input)
			if p != " " {
				break
			}
			input = input[n:]
		}
	}
	if input == "" {
		return ""
	}
	var out strings.Builder
	out.Grow(len(input) * 3)
	addWS := func() {
		if spec.escapeWhitespaces {
			out.WriteString(spaceSymbol)
		} else {
			out.WriteByte(' ')
		}
	}
	if !nz.suffixSpace && spec.addDummyPrefix {
		addWS()
	}
	prevSpace := spec.removeExtraWhitespaces
	for input != "" {
		sp, n := nz.normalizePrefix(input)
		for prevSpace && strings.HasPrefix(sp, " ") {
			sp = sp[1:]
		}
		if sp != "" {
			for i := 0; i < len(sp); i++ {
				if spec.escapeWhitespaces && sp[i] == ' ' {
					out.WriteString(spaceSymbol)
				} else {
					out.WriteByte(sp[i])
				}
			}
			prevSpace = sp[len(sp)-1] == ' '
		}
		input = input[n:]
		if !spec.removeExtraWhitespaces {
			prevSpace = false
		}
	}
	res := out.String()
	if spec.removeExtraWhitespaces {
		space := " "
		if spec.escapeWhitespaces {
			space = spaceSymbol
		}
		for strings.HasSuffix(res, space) {
			res = res[:len(res)-len(space)]
		}
	}
	if nz.suffixSpace && spec.addDummyPrefix {
		if spec.escapeWhitespaces {
			res += spaceSymbol
		} else {
			res += " "
		}
	}
	return res
}

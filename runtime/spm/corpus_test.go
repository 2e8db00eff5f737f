package spm

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// Word lists for the synthetic training corpus: Latin with accents,
// German, French, Vietnamese, Greek, Cyrillic, CJK, Korean, emoji, digits
// and punctuation.
var corpusWords = []string{
	"the", "a", "cat", "dog", "sat", "on", "mat", "red", "blue", "green", "circle",
	"square", "what", "color", "is", "answer", "caption", "detect", "describe",
	"there", "are", "two", "three", "people", "walking", "near", "house", "car",
	"café", "naïve", "résumé", "façade", "über", "Straße", "Mädchen", "größer",
	"déjà", "vu", "élève", "où", "garçon", "ñandú", "mañana", "São", "Paulo",
	"Tiếng", "Việt", "người", "Ελληνικά", "καλημέρα", "Привет", "мир", "собака",
	"日本語", "東京", "猫", "犬", "こんにちは", "カタカナ", "中文", "你好", "世界",
	"한국어", "안녕하세요", "😀", "🐱", "👍🏽", "🎉", "❤️", "👨‍👩‍👧",
	"2024", "3.14", "42", "1,000", "007", "½", "①", "ｆｕｌｌ", "ＡＢＣ", "ｶﾀｶﾅ",
	"—", "–", "…", "«", "»", "“quoted”", "(paren)", "[bracket]", "{brace}",
	"abc", "abcd", "Ab", "snake_case", "Å", "e-mail", "don't", "it's", "#hash", "@at", "50%", "$5", "€10", "£3", "x²", "ﬁne",
}

var corpusPunct = []string{".", ",", "!", "?", ";", ":", "", "", "", ""}

// makeCorpus returns n deterministic pseudo-random lines of text.
func makeCorpus(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	lines := make([]string, n)
	for i := range lines {
		k := 3 + r.IntN(12)
		var b strings.Builder
		for j := 0; j < k; j++ {
			if j > 0 {
				switch r.IntN(20) {
				case 0:
					b.WriteString("  ")
				case 1:
					b.WriteString("")
				default:
					b.WriteString(" ")
				}
			}
			b.WriteString(corpusWords[r.IntN(len(corpusWords))])
			if r.IntN(6) == 0 {
				b.WriteString(corpusPunct[r.IntN(len(corpusPunct))])
			}
			if r.IntN(25) == 0 {
				fmt.Fprintf(&b, " %d", r.IntN(100000))
			}
		}
		lines[i] = b.String()
	}
	return lines
}

// fixedProbes are inputs that exercise the corners of normalization and
// segmentation.
var fixedProbes = []string{
	"",
	" ",
	"     ",
	"\t",
	" \t \t ",
	"a",
	" a ",
	"   leading and trailing   ",
	"multiple     inner      spaces",
	"tab\tseparated\tvalues",
	"carriage\rreturn",
	"form\ffeed and \vvertical",
	"non\u00a0breaking\u00a0space",
	"ideographic\u3000space",
	"zero\u200bwidth\u200djoiner",
	"soft\u00adhyphen",
	"combining e\u0301 vs é",
	"ﬁ ﬂ ﬀ ligatures",
	"ＦＵＬＬＷＩＤＴＨ ｆｕｌｌｗｉｄｔｈ １２３",
	"ﾊﾝｶｸ ｶﾀｶﾅ",
	"① ② ③ ⅰ ⅱ ⅲ ㈱ ㎏ ㍻",
	"x² x₂ ½ ¼",
	"Ångström Øresund Œuvre æsir",
	"İstanbul ıi ǅ ǈ",
	"日本語のテキストと中文和한국어",
	"😀😀😀 🐱🐶 👍🏽👍🏿 👨‍👩‍👧‍👦 🇫🇷🇯🇵",
	"❤️ ☺️ ✔︎",
	"العربية نص",
	"हिन्दी पाठ",
	"ภาษาไทย",
	"ქართული",
	"ᚠᚢᚦᚨᚱᚲ",
	"𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝",
	"𠀀𠀁 CJK extension B",
	"1234567890 3.14159 1,000,000 -42 +7",
	"0000000000000000000000000000",
	"!!!??? ... ,,, ;;; ::: ---",
	"\"quotes\" 'single' `back`",
	"<s> </s> <unk> <pad> <0x41>",
	"<sep> [MASK] <ctl> <sep>[MASK]<sep>",
	"abcabc ab a b c abab Abc ABC aBc",
	"a_b__c _leading trailing_ __",
	"a<sep>b [MASK]c",
	"\u2581 already \u2581\u2581escaped",
	"\ufffd replacement",
	"bad \xff byte",
	"bad \xc3 truncated",
	"overlong \xc0\xaf slash",
	"surrogate \xed\xa0\x80 half",
	"too big \xf4\x90\x80\x80",
	"\x80\x80\x80",
	"\x01\x02\x03 controls \x1b[0m",
	"del\x7fchar",
	"mixed 日本 and English and 😀 and café",
	strings.Repeat("long ", 200),
	strings.Repeat("ab", 300),
	strings.Repeat("日本", 150),
	strings.Repeat("😀", 100),
	strings.Repeat(" ", 50) + "x" + strings.Repeat(" ", 50),
}

// randomProbes returns n random strings mixing characters of the corpus,
// characters from outside it, spaces and stray bytes.
func randomProbes(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 2))
	var alphabet []string
	for _, w := range corpusWords {
		for _, c := range w {
			alphabet = append(alphabet, string(c))
		}
	}
	extra := []string{" ", " ", "  ", "\t", "\u00a0", "\u3000", "ß", "Ω", "ж", "ع", "क", "ก",
		"\U0001F680", "\U0001F9D1", "\u0301", "\u200d", "\ufe0f", "ｱ", "Ａ", "１", "Ⅻ", "\xff", "\xe3\x81", "<sep>", "[MASK]", "<ctl>"}
	out := make([]string, n)
	for i := range out {
		k := r.IntN(40)
		var b strings.Builder
		for j := 0; j < k; j++ {
			switch r.IntN(4) {
			case 0:
				b.WriteString(extra[r.IntN(len(extra))])
			case 1:
				b.WriteString(corpusWords[r.IntN(len(corpusWords))])
			default:
				b.WriteString(alphabet[r.IntN(len(alphabet))])
			}
		}
		out[i] = b.String()
	}
	return out
}

// randomRunes returns n strings of random code points from every plane
// (including unassigned ones, controls other than NUL and newline,
// combining marks and surrogate-like byte sequences) and random bytes.
func randomRunes(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 3))
	ranges := [][2]rune{{0x01, 0x7f}, {0x80, 0x2ff}, {0x300, 0x36f}, {0x370, 0x1fff}, {0x2000, 0x2bff},
		{0x3000, 0x30ff}, {0x3400, 0x9fff}, {0xac00, 0xd7a3}, {0xe000, 0xffff}, {0x10000, 0x1ffff},
		{0x1f300, 0x1faff}, {0x20000, 0x2ffff}, {0xe0000, 0x10ffff}}
	out := make([]string, n)
	for i := range out {
		var b []byte
		k := r.IntN(30)
		for j := 0; j < k; j++ {
			switch x := r.IntN(10); {
			case x == 0:
				b = append(b, byte(1+r.IntN(255)))
			case x < 3:
				b = append(b, ' ')
			default:
				g := ranges[r.IntN(len(ranges))]
				c := g[0] + rune(r.IntN(int(g[1]-g[0]+1)))
				b = utf8.AppendRune(b, c)
			}
		}
		out[i] = strings.ReplaceAll(string(b), "\n", " ")
	}
	return out
}

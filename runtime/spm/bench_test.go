package spm

import (
	"path/filepath"
	"strings"
	"testing"
)

// benchText is about 64 KiB of mixed text from the corpus generator.
var benchText = strings.Join(makeCorpus(21, 700), " ")

func benchmarkEncode(b *testing.B, name, text string) {
	m, err := Load(filepath.Join("testdata", name+".model"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		m.Encode(text)
	}
}

func BenchmarkEncodeUnigramLine(b *testing.B) {
	benchmarkEncode(b, "unigram_bytes", "answer en what color is the circle near the café? 日本語 😀")
}
func BenchmarkEncodeUnigramLong(b *testing.B) { benchmarkEncode(b, "unigram_bytes", benchText) }
func BenchmarkEncodeBPELine(b *testing.B) {
	benchmarkEncode(b, "bpe_bytes", "answer en what color is the circle near the café? 日本語 😀")
}
func BenchmarkEncodeBPELong(b *testing.B) { benchmarkEncode(b, "bpe_bytes", benchText) }

// BenchmarkEncodeUnigramRepeat checks that a long run of one character
// (the worst case for lattice search) stays linear.
func BenchmarkEncodeUnigramRepeat(b *testing.B) {
	benchmarkEncode(b, "unigram_bytes", strings.Repeat("a", 1<<16))
}
func BenchmarkEncodeBPERepeat(b *testing.B) {
	benchmarkEncode(b, "bpe_bytes", strings.Repeat("a", 1<<16))
}
func BenchmarkEncodeBPESpaces(b *testing.B) {
	benchmarkEncode(b, "bpe_bytes", strings.Repeat(" ", 1<<16))
}

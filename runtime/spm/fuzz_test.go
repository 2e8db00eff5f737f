package spm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode encodes random text with the kept models: no panic, ids in
// range, no two adjacent unknown ids, and on these byte-fallback models
// Decode(Encode(x)) gives back the normalized x.
func FuzzEncode(f *testing.F) {
	var models []*Model
	for _, cfg := range keptModels {
		m, err := Load(filepath.Join("testdata", cfg.name+".model"))
		if err != nil {
			f.Fatal(err)
		}
		models = append(models, m)
	}
	for _, s := range fixedProbes {
		f.Add(s)
	}
	for _, s := range randomProbes(99, 30) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range models {
			ids := m.Encode(s)
			for i, id := range ids {
				if id < 0 || id >= m.Size() {
					t.Fatalf("%s: Encode(%q) gives id %d out of range", m.Kind(), s, id)
				}
				if m.Piece(id).Type == Control {
					t.Fatalf("%s: Encode(%q) emits control piece %d", m.Kind(), s, id)
				}
				if i > 0 && id == m.UNK() && ids[i-1] == m.UNK() {
					t.Fatalf("%s: Encode(%q) has adjacent unknown ids", m.Kind(), s)
				}
			}
			norm := m.Normalize(s)
			if !utf8.ValidString(norm) && utf8.ValidString(s) {
				t.Fatalf("%s: Normalize(%q) = %q is not UTF-8", m.Kind(), s, norm)
			}
			if got, want := m.Decode(ids), expectedDecode(m, s); got != want {
				t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q", m.Kind(), s, got, want)
			}
		}
	})
}

// FuzzParse feeds random bytes to Parse: an error or a working model,
// never a panic.
func FuzzParse(f *testing.F) {
	// The small kept models (the nmt_nfkc one is 240 KiB, too big for
	// the mutator) and hand-built ones.
	for _, name := range []string{"unigram_rules", "bpe_bytes"} {
		data, err := os.ReadFile(filepath.Join("testdata", name+".model"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	for _, kind := range []uint64{modelUnigram, modelBPE} {
		f.Add(buildModel(basicPieces(), protoBuf(nil).uint(3, kind).uint(24, 1), protoBuf(nil).uint(3, 0)))
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x07, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x18, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("model and error")
			}
			if !strings.HasPrefix(err.Error(), "spm: ") {
				t.Fatalf("error %q does not name the package", err)
			}
			return
		}
		for _, s := range []string{"", " ", "hello world", "日本語 😀", "\xff\xfe", "  a  b  "} {
			ids := m.Encode(s)
			for _, id := range ids {
				if id < 0 || id >= m.Size() {
					t.Fatalf("id %d out of range", id)
				}
			}
			_ = m.Decode(ids)
		}
		_ = m.Decode([]int{-1, 0, m.Size(), m.Size() - 1})
	})
}

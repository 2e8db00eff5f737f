package spm

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "retrain the kept testdata models with spm_train and rewrite their golden ids with spm_encode")

// keptModels are the small models kept in testdata for the fuzzers and
// for machines without spm_train. Each has a golden file of inputs (Go
// quoted) and the ids spm_encode printed for them.
var keptModels = []trainConfig{
	{"unigram_bytes", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--vocab_size=600",
		"--byte_fallback", "--character_coverage=0.98", "--user_defined_symbols=<sep>,[MASK]", "--control_symbols=<ctl>"}},
	{"unigram_rules", []string{"--model_type=unigram", "--normalization_rule_tsv={rules}", "--vocab_size=700",
		"--byte_fallback", "--character_coverage=0.98", "--user_defined_symbols=<sep>"}},
	{"bpe_bytes", []string{"--model_type=bpe", "--normalization_rule_name=identity", "--vocab_size=600",
		"--byte_fallback", "--split_digits", "--add_dummy_prefix=false", "--remove_extra_whitespaces=false",
		"--user_defined_symbols=<sep>,\u2581\u2581", "--character_coverage=0.98"}},
}

func goldenProbes() []string {
	return slices.Concat(fixedProbes, makeCorpus(11, 100), randomProbes(12, 300))
}

// TestGolden checks Encode against the golden ids of the kept models. It
// needs no spm tool; with spm_encode present it also checks that the golden
// files still match it. With -update it regenerates the kept models.
func TestGolden(t *testing.T) {
	if *update {
		writeKeptModels(t)
	}
	for _, cfg := range keptModels {
		t.Run(cfg.name, func(t *testing.T) {
			path := filepath.Join("testdata", cfg.name+".model")
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			lines, want := readGolden(t, filepath.Join("testdata", cfg.name+".golden"))
			if len(lines) < 100 {
				t.Fatalf("golden file has only %d lines", len(lines))
			}
			compareEncode(t, m, lines, want)
			checkDecode(t, m, lines)
		})
	}
}

func writeKeptModels(t *testing.T) {
	needSPM(t, "spm_train")
	needSPM(t, "spm_encode")
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(corpus, []byte(strings.Join(makeCorpus(5, 1500), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	probes := goldenProbes()
	for _, cfg := range keptModels {
		path := trainModel(t, dir, corpus, cfg)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", cfg.name+".model"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ids := spmEncode(t, path, probes)
		var b strings.Builder
		fmt.Fprintf(&b, "# spm_encode --model=%s.model --output_format=id; model from spm_train %s\n", cfg.name, strings.Join(cfg.args, " "))
		for i, p := range probes {
			b.WriteString(strconv.Quote(p))
			b.WriteByte('\t')
			for j, id := range ids[i] {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(strconv.Itoa(id))
			}
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join("testdata", cfg.name+".golden"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readGolden reads a golden file: one `"quoted input"<TAB>ids` per line.
func readGolden(t *testing.T, path string) ([]string, [][]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var ids [][]int
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		row := sc.Text()
		if strings.HasPrefix(row, "#") {
			continue
		}
		q, rest, ok := strings.Cut(row, "\t")
		if !ok {
			t.Fatalf("%s:%d: no tab", path, n)
		}
		s, err := strconv.Unquote(q)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		lines = append(lines, s)
		ids = append(ids, parseIDLines(t, rest+"\n", 1)[0])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines, ids
}

// TestGoldenStillSPM re-runs spm_encode on the golden inputs when it is
// installed, so that the kept files cannot drift from the real tool.
func TestGoldenStillSPM(t *testing.T) {
	needSPM(t, "spm_encode")
	for _, cfg := range keptModels {
		lines, want := readGolden(t, filepath.Join("testdata", cfg.name+".golden"))
		got := spmEncode(t, filepath.Join("testdata", cfg.name+".model"), lines)
		for i := range lines {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("%s: golden ids of %q are %v, spm_encode prints %v", cfg.name, lines[i], want[i], got[i])
			}
		}
	}
}

package spm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// needSPM returns the path of an spm tool. Outside CI a missing tool skips
// the test; in CI (CI=true) it fails it.
func needSPM(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found and CI=true: install Debian's sentencepiece package", name)
		}
		t.Skipf("%s not found: install Debian's sentencepiece package (apt-get install sentencepiece) to run this test", name)
	}
	return p
}

// trainConfig is one spm_train run.
type trainConfig struct {
	name string
	args []string
}

var trainConfigs = []trainConfig{
	{"unigram_nfkc", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--vocab_size=600"}},
	{"unigram_nfkc_user_control", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--vocab_size=500",
		"--user_defined_symbols=<sep>,[MASK],a<sep>", "--control_symbols=<ctl>,<extra_id_0>"}},
	{"unigram_identity", []string{"--model_type=unigram", "--normalization_rule_name=identity", "--vocab_size=600"}},
	{"unigram_nfkc_bytes", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--vocab_size=700",
		"--byte_fallback", "--character_coverage=0.98", "--user_defined_symbols=<sep>,[MASK]"}},
	{"unigram_t5_ids", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--vocab_size=500",
		"--pad_id=0", "--eos_id=1", "--unk_id=2", "--bos_id=-1", "--character_coverage=0.99"}},
	{"unigram_suffix", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--vocab_size=500",
		"--treat_whitespace_as_suffix", "--split_digits"}},
	{"unigram_nfkc_cf", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc_cf", "--vocab_size=500"}},
	{"unigram_rules", []string{"--model_type=unigram", "--normalization_rule_tsv={rules}", "--vocab_size=400"}},
	{"bpe_rules_bytes", []string{"--model_type=bpe", "--normalization_rule_tsv={rules}", "--vocab_size=600",
		"--byte_fallback", "--character_coverage=0.98"}},
	{"unigram_denorm", []string{"--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--vocab_size=500",
		"--denormalization_rule_tsv={denorm}"}},
	{"bpe_nfkc", []string{"--model_type=bpe", "--normalization_rule_name=nmt_nfkc", "--vocab_size=600"}},
	{"bpe_nfkc_user_control", []string{"--model_type=bpe", "--normalization_rule_name=nmt_nfkc", "--vocab_size=500",
		"--user_defined_symbols=<sep>,[MASK]", "--control_symbols=<ctl>"}},
	{"bpe_nfkc_bytes", []string{"--model_type=bpe", "--normalization_rule_name=nmt_nfkc", "--vocab_size=700",
		"--byte_fallback", "--character_coverage=0.98"}},
	{"bpe_identity", []string{"--model_type=bpe", "--normalization_rule_name=identity", "--vocab_size=600"}},
	{"bpe_gemma_like", []string{"--model_type=bpe", "--normalization_rule_name=identity", "--vocab_size=700",
		"--byte_fallback", "--split_digits", "--add_dummy_prefix=false", "--remove_extra_whitespaces=false",
		"--allow_whitespace_only_pieces", "--user_defined_symbols=<sep>,[MASK],\u2581\u2581,\u2581\u2581\u2581\u2581",
		"--pad_id=0", "--eos_id=1", "--bos_id=2", "--unk_id=3", "--character_coverage=0.99"}},
}

// testRules is a custom normalization rule file (spm_train
// --normalization_rule_tsv): source code points, a tab, target code
// points. It gives a small precompiled charsmap built by the real
// darts-clone builder, with multi-character sources (longest match),
// deletions and rules that touch spaces.
const testRules = "41\t61\nC5\t41 30A\nFB01\t66 69\n3000\t20\n9\t20\n200B\n61 62 63\t58\n61 62\t59\n" +
	"1F600\t3A 29\n20 20\t20\nE9\t65 301\nFF21\t41\n5F\t20\n"

// testDenormRules is a denormalization rule file (spm_train
// --denormalization_rule_tsv): "⁇" becomes "?", "ab" becomes "AB", a
// space before a comma goes.
const testDenormRules = "2047\t3F\n61 62\t41 42\n20 2C\t2C\n"

// trainModel trains one model on corpus with spm_train and returns its path.
func trainModel(t *testing.T, dir, corpus string, cfg trainConfig) string {
	t.Helper()
	prefix := filepath.Join(dir, cfg.name)
	rules := filepath.Join(dir, "rules.tsv")
	if err := os.WriteFile(rules, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--input=" + corpus, "--model_prefix=" + prefix,
		"--num_threads=1", "--minloglevel=1", "--hard_vocab_limit=false"}
	denorm := filepath.Join(dir, "denorm.tsv")
	if err := os.WriteFile(denorm, []byte(testDenormRules), 0o644); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("{rules}", rules, "{denorm}", denorm)
	for _, a := range cfg.args {
		args = append(args, r.Replace(a))
	}
	cmd := exec.Command(needSPM(t, "spm_train"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("spm_train %s: %v\n%s", cfg.name, err, stderr.String())
	}
	return prefix + ".model"
}

// spmEncode runs spm_encode --output_format=id over lines and returns the
// ids of each line.
func spmEncode(t testing.TB, model string, lines []string) [][]int {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var b strings.Builder
	for _, l := range lines {
		if strings.ContainsRune(l, '\n') {
			t.Fatalf("probe %q holds a newline", l)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(needSPM(t, "spm_encode"), "--model="+model, "--output_format=id", "--input="+in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spm_encode: %v\n%s", err, stderr.String())
	}
	return parseIDLines(t, string(out), len(lines))
}

func parseIDLines(t testing.TB, out string, n int) [][]int {
	t.Helper()
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if n == 0 && out == "" {
		rows = nil
	}
	if len(rows) != n {
		t.Fatalf("spm_encode printed %d lines for %d inputs", len(rows), n)
	}
	res := make([][]int, n)
	for i, row := range rows {
		res[i] = []int{}
		for _, f := range strings.Fields(row) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("line %d: bad id %q", i, f)
			}
			res[i] = append(res[i], id)
		}
	}
	return res
}

// compareEncode checks Encode against want for every line.
func compareEncode(t *testing.T, m *Model, lines []string, want [][]int) {
	t.Helper()
	bad := 0
	for i, l := range lines {
		got := m.Encode(l)
		if !slices.Equal(got, want[i]) {
			bad++
			if bad <= 5 {
				t.Errorf("Encode(%q)\n got %v\nwant %v\nnormalized %q", l, got, want[i], m.Normalize(l))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d lines differ from spm_encode", bad, len(lines))
	}
	// The probes must reach the features the model has, or the comparison
	// proves little.
	seen := map[PieceType]int{}
	for _, ids := range want {
		for _, id := range ids {
			seen[m.Piece(id).Type]++
		}
	}
	if seen[Normal] == 0 {
		t.Errorf("no normal piece in the expected output")
	}
	if m.ByteFallback() {
		if seen[Byte] == 0 {
			t.Errorf("byte fallback model, but no byte piece in the expected output")
		}
	} else if seen[Unknown] == 0 {
		t.Errorf("no unknown piece in the expected output")
	}
	for _, p := range m.pieces {
		if p.Type == UserDefined && seen[UserDefined] == 0 {
			t.Errorf("model has user-defined pieces but none in the expected output")
			break
		}
	}
}

var (
	corpusOnce  sync.Once
	corpusLines []string
)

func trainingCorpus() []string {
	corpusOnce.Do(func() { corpusLines = makeCorpus(1, 3000) })
	return corpusLines
}

// TestEncodeMatchesSPM trains models with spm_train and compares Encode
// with spm_encode on corpus lines, edge cases and random text.
func TestEncodeMatchesSPM(t *testing.T) {
	needSPM(t, "spm_train")
	needSPM(t, "spm_encode")
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(corpus, []byte(strings.Join(trainingCorpus(), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	probes := slices.Concat(fixedProbes, makeCorpus(7, 400), randomProbes(3, 1500), randomRunes(4, 1000))
	for _, cfg := range trainConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			path := trainModel(t, dir, corpus, cfg)
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			want := spmEncode(t, path, probes)
			compareEncode(t, m, probes, want)
			checkDecode(t, m, probes)
			compareDecode(t, m, path, want)
		})
	}
}

// spmDecode runs spm_decode --input_format=id over id lines. spm_decode
// reads an empty line as id 0, so callers pass non-empty lines only.
func spmDecode(t *testing.T, model string, ids [][]int) []string {
	t.Helper()
	var b strings.Builder
	for _, row := range ids {
		for j, id := range row {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(id))
		}
		b.WriteByte('\n')
	}
	in := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(needSPM(t, "spm_decode"), "--model="+model, "--input_format=id", "--input="+in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spm_decode: %v\n%s", err, stderr.String())
	}
	rows := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(rows) != len(ids) {
		t.Fatalf("spm_decode printed %d lines for %d inputs", len(rows), len(ids))
	}
	return rows
}

// compareDecode checks Decode against spm_decode on the encoded probes
// plus every single id and a few id sequences out of the usual order.
func compareDecode(t *testing.T, m *Model, path string, encoded [][]int) {
	t.Helper()
	var ids [][]int
	for _, row := range encoded {
		if len(row) > 0 {
			ids = append(ids, row)
		}
	}
	newline, _ := m.ID("<0x0A>") // would split spm_decode's output line
	for id := 0; id < m.Size(); id++ {
		row3 := []int{m.Size() - 1 - id, id, (id * 7) % m.Size()}
		if id == newline || slices.Contains(row3, newline) {
			continue
		}
		ids = append(ids, []int{id}, []int{id, id}, row3)
	}
	want := spmDecode(t, path, ids)
	bad := 0
	for i, row := range ids {
		if got := m.Decode(row); got != want[i] {
			bad++
			if bad <= 5 {
				t.Errorf("Decode(%v) = %q, spm_decode %q", row, got, want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d id lines decode differently from spm_decode", bad, len(ids))
	}
}

// checkDecode checks that Decode inverts Encode up to normalization on a
// model with byte fallback, and that ids round-trip through pieces.
func checkDecode(t *testing.T, m *Model, lines []string) {
	t.Helper()
	for id := 0; id < m.Size(); id++ {
		if got, ok := m.ID(m.Piece(id).Text); !ok || got != id {
			t.Fatalf("ID(Piece(%d).Text) = %d, %v", id, got, ok)
		}
	}
	if !m.ByteFallback() {
		return
	}
	bad := 0
	for _, l := range lines {
		want := expectedDecode(m, l)
		if got := m.Decode(m.Encode(l)); got != want {
			bad++
			if bad <= 5 {
				t.Errorf("Decode(Encode(%q)) = %q, want %q", l, got, want)
			}
		}
	}
}

// expectedDecode is what decoding the encoding of text must give on a
// byte-fallback model: the normalized text with spaces unescaped and the
// dummy prefix space removed.
func expectedDecode(m *Model, text string) string {
	n := m.Normalize(text)
	spec := m.proto.normalizer
	if spec.addDummyPrefix || spec.removeExtraWhitespaces {
		if spec.removeExtraWhitespaces {
			n = strings.TrimLeft(n, spaceSymbol)
		} else {
			n = strings.TrimPrefix(n, spaceSymbol)
		}
	}
	return strings.ReplaceAll(n, spaceSymbol, " ")
}

func ExampleModel_Encode() {
	m, err := Load("testdata/unigram_bytes.model")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := m.Encode("the cat sat on the mat")
	fmt.Println(m.Decode(ids))
	// Output: the cat sat on the mat
}

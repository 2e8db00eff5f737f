package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
	"github.com/palid/palid/runtime/gguf"
)

// testCheckpoint is a tiny PaLI-3 checkpoint written by the PyTorch
// reference (tools/reference).
const testCheckpoint = "../../runtime/testdata/pali3_tiny_a"

func TestConvertAndInspect(t *testing.T) {
	out := filepath.Join(t.TempDir(), "model")
	if code := run([]string{"convert", "--quiet", "--quant", "q4_0", "--out", out, testCheckpoint}); code != 0 {
		t.Fatalf("palid convert exited %d", code)
	}
	var buf bytes.Buffer
	if err := inspect([]string{out}, &buf); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{
		filepath.Join(out, "model.gguf") + ": GGUF v3, ",
		filepath.Join(out, "mmproj.gguf") + ": GGUF v3, ",
		`general.architecture                = "t5"`,
		`tokenizer.ggml.tokens               = [string x 320] "<pad>", "</s>", "<unk>",`,
		"palid.tokenizer.spm_model           = [uint8 x ",
		"clip.vision.image_mean",
		"[float32 x 3] 0.5, 0.5, 0.5",
		"token_embd.weight ",
		" q4_0  [64 320] ",
		"total: 39 tensors, ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, s)
		}
	}
	for _, want := range [][]string{
		{"enc.blk.0.attn_rel_b.weight", "f32", "[4", "32]", "512", "B"},
		{"mm.model.fc.weight", "q4_0", "[64", "64]", "2.2", "KiB"},
		{"v.patch_embd.weight", "f32", "[8", "8", "3", "64]"},
	} {
		if !hasLine(s, want...) {
			t.Errorf("inspect output lacks a line %q", want)
		}
	}
	// A single file shows only that file.
	buf.Reset()
	if err := inspect([]string{filepath.Join(out, "mmproj.gguf")}, &buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "model.gguf:") || !strings.Contains(buf.String(), "v.patch_embd.weight") {
		t.Errorf("inspect FILE:\n%s", buf.String())
	}
}

func TestInspectValues(t *testing.T) {
	w := gguf.NewWriter()
	w.Add("s", strings.Repeat("x", 100))
	w.Add("ints", []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	w.Add("nested", []any{[]uint32{1}, []string{"a"}})
	w.Add("f", float32(0.25))
	w.Add("empty", []bool{})
	w.AddTensor("w", neon.Q8_0, []uint64{32, 2}, make([]byte, 68))
	path := filepath.Join(t.TempDir(), "x.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := inspect([]string{path}, &buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`s      = "` + strings.Repeat("x", 80) + `"... (100 bytes)`,
		"ints   = [int32 x 10] 1, 2, 3, 4, 5, 6, 7, 8, ...",
		`nested = [array x 2] [uint32 x 1] 1, [string x 1] "a"`,
		"f      = 0.25",
		"empty  = [bool x 0]",
		"w  q8_0  [32 2]              68 B",
		"total: 1 tensors, 68 B of tensor data (q8_0: 1 tensors, 68 B)",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestConvertInspectBadInput(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "bad.gguf")
	os.WriteFile(corrupt, []byte("GGUF\x03\x00\x00\x00\x01"), 0o644)
	empty := t.TempDir()
	cases := [][]string{
		{"convert"},
		{"convert", "--out", dir},
		{"convert", "--out", dir, "--quant", "q5_k", testCheckpoint},
		{"convert", "--bogus"},
		{"convert", "--out", filepath.Join(dir, "o"), empty},
		{"convert", "--out", filepath.Join(dir, "o"), filepath.Join(dir, "missing")},
		{"inspect"},
		{"inspect", "a", "b"},
		{"inspect", filepath.Join(dir, "missing")},
		{"inspect", corrupt},
		{"inspect", empty},
	}
	for _, args := range cases {
		if code := run(args); code != 2 {
			t.Errorf("palid %s exited %d, want 2", strings.Join(args, " "), code)
		}
	}
	if code := run([]string{"inspect", "-h"}); code != 0 {
		t.Errorf("inspect -h exited %d", code)
	}
}

// hasLine reports whether a line of s has exactly the given fields.
func hasLine(s string, fields ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

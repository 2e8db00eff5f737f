package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palid/palid/runtime/gguf"
)

const testSPM = "../../runtime/spm/testdata/unigram_bytes.model"

var tokenizeInputs = []string{"", "   ", "hello world", "Café  Straße 日本語 😀", "<sep> [MASK]", "ｆｕｌｌ ① \xff"}

// spmEncodeLine runs spm_encode on one line; ok is false when the tool is
// missing outside CI.
func spmEncodeLine(t *testing.T, model, text string) (string, bool) {
	t.Helper()
	p, err := exec.LookPath("spm_encode")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("spm_encode not found and CI=true")
		}
		return "", false
	}
	cmd := exec.Command(p, "--model="+model, "--output_format=id")
	cmd.Stdin = strings.NewReader(text + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spm_encode: %v", err)
	}
	return string(out), true
}

func TestTokenize(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(testSPM)
	if err != nil {
		t.Fatal(err)
	}
	w := gguf.NewWriter()
	w.Add("general.architecture", "t5")
	w.Add(spmModelKey, data)
	if err := w.WriteFile(filepath.Join(dir, "model.gguf")); err != nil {
		t.Fatal(err)
	}
	for _, text := range tokenizeInputs {
		var a, b bytes.Buffer
		if err := tokenize([]string{"--spm", testSPM, text}, &a); err != nil {
			t.Fatalf("--spm %q: %v", text, err)
		}
		if err := tokenize([]string{"--model", dir, text}, &b); err != nil {
			t.Fatalf("--model %q: %v", text, err)
		}
		if a.String() != b.String() {
			t.Errorf("%q: --spm prints %q, --model prints %q", text, a.String(), b.String())
		}
		if want, ok := spmEncodeLine(t, testSPM, text); ok && a.String() != want {
			t.Errorf("%q: palid tokenize prints %q, spm_encode %q", text, a.String(), want)
		}
		if !strings.HasSuffix(a.String(), "\n") || strings.Count(a.String(), "\n") != 1 {
			t.Errorf("%q: output %q is not one line", text, a.String())
		}
	}
}

func TestTokenizeErrors(t *testing.T) {
	dir := t.TempDir()
	w := gguf.NewWriter()
	w.Add("general.architecture", "t5")
	if err := w.WriteFile(filepath.Join(dir, "model.gguf")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PALID_MODEL", dir) // the default model, used without flags
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--spm", testSPM}, "missing TEXT"},
		{[]string{"--spm", testSPM, "--model", dir, "x"}, "not both"},
		{[]string{"--spm", filepath.Join(dir, "nope.model"), "x"}, "no such file"},
		{[]string{"--spm", filepath.Join(dir, "model.gguf"), "x"}, "bad model"},
		{[]string{"--model", dir, "x"}, spmModelKey},
		{[]string{"x"}, spmModelKey},
		{[]string{"--model", filepath.Join(dir, "absent"), "x"}, "absent"},
		{[]string{"--spm", testSPM, "a\nb"}, "newline"},
	} {
		var out bytes.Buffer
		err := tokenize(tc.args, &out)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tokenize %q = %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

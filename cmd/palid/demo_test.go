package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/palid/palid/capture/synth"
)

// bundledModel is the bundled demo model, relative to this package.
var bundledModel = filepath.Join("..", "..", "models", "default")

// askBundled runs `palid ask` with the bundled model and returns the answer.
func askBundled(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	full := append([]string{"--model", bundledModel, "--threads", "2"}, args...)
	if err := ask(full, &out); err != nil {
		t.Fatalf("palid ask %s: %v", strings.Join(full, " "), err)
	}
	return strings.TrimSpace(out.String())
}

// demoCases are questions about held-out scenes and clips (dataset seeds 9
// and 8, never used in training) with their true answers, which the test
// also checks against capture/synth's own questions and answers. The bundled
// model is not perfect (docs/demo-model.md: 98.8% of held-out
// single-frame questions, 90.4% of clip questions), so these are held-out
// questions of every task, the sign's code, "top" and "bottom", and each
// of the four directions of motion included, that palid Q8_0, palid F32,
// palid Q4_0 and PyTorch all answer right; a broken engine, converter or
// quantized kernel shows up as a wrong answer.
var demoCases = []struct {
	seed   int64
	frames int
	prompt string
	want   string
}{
	{9000012, 1, "caption en", "a green star, a purple triangle and a sign reading HKC"},
	{9000002, 1, "ocr", "M6C"},
	{9000009, 1, "ocr", "HLC"},
	{9000002, 1, "answer en what color is the star?", "blue"},
	{9000001, 1, "answer en what color is the circle?", "yellow"},
	{9000008, 1, "answer en how many triangles are there?", "1"},
	{9000003, 1, "answer en how many triangles are there?", "0"},
	{9000001, 1, "answer en is there a yellow circle?", "yes"},
	{9000003, 1, "answer en is there a red square?", "no"},
	{9000001, 1, "answer en where is the circle?", "right"},
	{9000006, 1, "answer en where is the square?", "top"},
	{9000011, 1, "answer en where is the square?", "bottom"},
	{8000020, 16, "answer en which way is the orange triangle moving?", "left"},
	{8000001, 16, "answer en which way is the purple circle moving?", "right"},
	{8000021, 16, "answer en which way is the orange star moving?", "up"},
	{8000004, 16, "answer en which way is the blue square moving?", "down"},
	{8000014, 16, "answer en did anything enter the scene?", "yes"},
	{8000020, 16, "answer en did anything enter the scene?", "no"},
	{8000009, 16, "answer en did anything leave the scene?", "no"},
	{8000020, 16, "answer en did anything leave the scene?", "yes"},
}

func TestBundledModelAnswers(t *testing.T) {
	if _, err := os.Stat(filepath.Join(bundledModel, "model.gguf")); err != nil {
		t.Fatalf("bundled model missing: %v", err)
	}
	for _, c := range demoCases {
		args := []string{"--synthetic", strconv.FormatInt(c.seed, 10)}
		var qs []synth.QA
		if c.frames > 1 {
			args = append(args, "--frames", strconv.Itoa(c.frames))
			qs = synth.NewClip(c.seed).Questions()
		} else {
			qs = synth.NewScene(c.seed).Questions()
		}
		truth := answerOf(qs, c.prompt)
		if truth == "" {
			t.Fatalf("seed %d: the synthetic world asks no question %q", c.seed, c.prompt)
		}
		if truth != c.want {
			t.Fatalf("seed %d %q: pinned answer %q is not the scene's true answer %q", c.seed, c.prompt, c.want, truth)
		}
		if got := askBundled(t, append(args, c.prompt)...); got != c.want {
			t.Errorf("palid ask --synthetic %d %q = %q, want %q", c.seed, c.prompt, got, c.want)
		}
	}
}

func TestBundledModelAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the accuracy sweep")
	}
	right, total := 0, 0
	for i := 0; i < 12; i++ {
		seed := synth.ItemSeed(9, i)
		for _, q := range synth.NewScene(seed).Questions() {
			total++
			if got := askBundled(t, "--synthetic", strconv.FormatInt(seed, 10), q.Prompt); got == q.Answer {
				right++
			} else {
				t.Logf("seed %d %q: got %q, want %q", seed, q.Prompt, got, q.Answer)
			}
		}
	}
	acc := float64(right) / float64(total)
	t.Logf("bundled model: %d of %d held-out scene questions right (%.1f%%)", right, total, 100*acc)
	if acc < demoAccuracyFloor {
		t.Errorf("accuracy %.3f below the floor %.3f", acc, demoAccuracyFloor)
	}
}

func answerOf(qs []synth.QA, prompt string) string {
	for _, q := range qs {
		if q.Prompt == prompt {
			return q.Answer
		}
	}
	return ""
}

// demoAccuracyFloor is the exact-match rate TestBundledModelAccuracy
// demands of the true answers of the 12 held-out scenes: palid Q8_0
// measured 89 of 89 (100%) on these questions (`go test -v -run
// BundledModelAccuracy ./cmd/palid/` logs the count); the floor (84 of 89)
// leaves room for a few near-tied answers flipping. The previous bundled
// models scored 89, 88, 89, 89, 88, 88, 84, 84, 85, 85, 78, 72, 74, 62, 43 and (picture-blind) 25
// of 89 here; a broken engine scores near zero.
const demoAccuracyFloor = 0.94

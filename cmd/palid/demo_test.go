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

// demoCases are held-out scenes and clips (dataset seeds 9 and 8, never
// used in training) with the answer the float PyTorch model gives
// (eval.jsonl of `train.py eval`), which palid Q8_0 reproduces. The demo model
// is weak (docs/demo-model.md), so some pinned answers are wrong about the
// world (truth in the comment); the cases check that the engine, the
// converter and the quantized kernels compute the trained model, and a
// broken one changes these answers.
var demoCases = []struct {
	seed   int64
	frames int
	prompt string
	want   string
}{
	{9000000, 1, "caption en", "a sign reading 92"}, // truth: a blue square and a sign reading EU2
	{9000000, 1, "ocr", "97"},                       // truth: EU2
	{9000000, 1, "answer en how many squares are there?", "1"},
	{9000000, 1, "answer en is there a red circle?", "no"},
	{9000001, 1, "answer en how many circles are there?", "1"},
	{9000001, 1, "answer en is there a purple square?", "no"},
	{9000011, 1, "answer en where is the square?", "bottom"},
	{9000013, 1, "answer en what color is the star?", "red"},
	{8000000, 16, "answer en which way is the blue circle moving?", "right"},
	{8000000, 16, "answer en did anything enter the scene?", "no"},
	{8000001, 16, "answer en did anything leave the scene?", "no"},
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
		if answerOf(qs, c.prompt) == "" {
			t.Fatalf("seed %d: the synthetic world asks no question %q", c.seed, c.prompt)
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
			if askBundled(t, "--synthetic", strconv.FormatInt(seed, 10), q.Prompt) == q.Answer {
				right++
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
// demands: palid Q8_0 measured 25 of 89 (28.1%) on these questions; the
// floor leaves room for a couple of near-tied answers flipping with the
// thread count. A broken engine answers garbage and scores near zero.
const demoAccuracyFloor = 0.25

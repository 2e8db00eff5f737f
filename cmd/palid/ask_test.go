package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

func writePNG(t *testing.T, path string, shade uint8) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			img.Set(x, y, color.RGBA{shade, uint8(x * 6), uint8(y * 8), 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestAsk(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	os.Mkdir(model, 0o755)
	if err := palirt.WriteRandomModel(model, "tiny", neon.Q8_0, 1); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "a.png")
	writePNG(t, img, 10)
	clip := filepath.Join(dir, "clip")
	os.Mkdir(clip, 0o755)
	for i := 0; i < 5; i++ {
		writePNG(t, filepath.Join(clip, fmt.Sprintf("f%02d.png", i)), uint8(40*i))
	}
	for _, args := range [][]string{
		{"--image", img},
		{"--video", clip, "--frames", "3"},
		{"--video", clip, "--stride", "2", "--beam", "2"},
		{"--synthetic", "4"},
		{"--synthetic", "4", "--frames", "4"},
	} {
		var out bytes.Buffer
		full := append([]string{"--model", model, "--json", "--max-tokens", "4", "--threads", "2"}, args...)
		full = append(full, "what", "color?")
		if err := ask(full, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var r struct {
			Answer    *string            `json:"answer"`
			Tokens    []int              `json:"tokens"`
			Logprobs  []float64          `json:"logprobs"`
			TimingsMS map[string]float64 `json:"timings_ms"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v: %v in %q", args, err, out.String())
		}
		if r.Answer == nil || len(r.Tokens) == 0 || len(r.Tokens) > 4 || len(r.Logprobs) != len(r.Tokens) {
			t.Fatalf("%v: %s", args, out.String())
		}
		for _, lp := range r.Logprobs {
			if lp > 0 {
				t.Fatalf("%v: positive logprob in %s", args, out.String())
			}
		}
		for _, k := range []string{"load", "vision", "encode", "decode", "total"} {
			if _, ok := r.TimingsMS[k]; !ok {
				t.Fatalf("%v: timing %q missing in %s", args, k, out.String())
			}
		}
	}
	// Plain output is the answer on one line.
	var out bytes.Buffer
	if err := ask([]string{"--model", model, "--max-tokens", "2", "--image", img, "caption en"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "\n") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("plain output %q", out.String())
	}

	notImage := filepath.Join(dir, "x.png")
	os.WriteFile(notImage, []byte("not an image"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", model, "--image", notImage, "q"}, "not a PNG, JPEG or GIF"},
		{[]string{"--model", model, "--image", filepath.Join(dir, "missing.png"), "q"}, "missing.png"},
		{[]string{"--model", model, "--synthetic", "1", "--frames", "17", "q"}, "--frames 17"},
		{[]string{"--model", model, "--image", img}, "missing PROMPT"},
		{[]string{"--model", model, "q"}, "exactly one of"},
		{[]string{"--model", model, "--image", img, "--synthetic", "1", "q"}, "exactly one of"},
		{[]string{"--model", model, "--synthetic", "x", "q"}, "integer seed"},
		{[]string{"--model", model, "--image", img, "--frames", "2", "q"}, "not --image"},
		{[]string{"--model", model, "--video", t.TempDir(), "q"}, "no PNG, JPEG or GIF"},
		{[]string{"--model", dir, "--image", img, "q"}, "model.gguf"},
		{[]string{"--nope", "q"}, "not defined"},
		{[]string{"--beam", "0", "--image", img, "q"}, "--beam 0"},
	} {
		err := ask(tc.args, &bytes.Buffer{})
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want a usage error containing %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error spans lines: %q", tc.args, err)
		}
	}
}

func TestSampleFrames(t *testing.T) {
	for _, tc := range []struct {
		total, n, s int
		want        string
	}{
		{16, 16, 0, "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]"},
		{5, 16, 0, "[0 1 2 3 4]"},
		{32, 16, 0, "[0 2 4 6 8 10 12 14 17 19 21 23 25 27 29 31]"},
		{10, 4, 0, "[0 3 6 9]"},
		{10, 1, 0, "[9]"},
		{10, 3, 4, "[0 4 8]"},
		{10, 16, 3, "[0 3 6 9]"},
	} {
		if got := fmt.Sprint(sampleFrames(tc.total, tc.n, tc.s)); got != tc.want {
			t.Errorf("sampleFrames(%d, %d, %d) = %s, want %s", tc.total, tc.n, tc.s, got, tc.want)
		}
	}
}

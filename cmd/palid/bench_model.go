package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// modelResult holds the end-to-end figures of one model in palid bench.
type modelResult struct {
	Name          string  `json:"name"`
	Dir           string  `json:"dir"`
	WeightType    string  `json:"weight_type"`
	LoadMS        float64 `json:"load_ms"`
	ImageEncodeMS float64 `json:"image_encode_ms"`
	// PrefillTokens is the encoder input of one frame + prompt.
	PrefillTokens    int     `json:"prefill_tokens"`
	PrefillTokensSec float64 `json:"prefill_tokens_per_s"`
	DecodeTokens     int     `json:"decode_tokens"`
	DecodeTokensSec  float64 `json:"decode_tokens_per_s"`
	DecodeMSPerToken float64 `json:"decode_ms_per_token"`
	// Video is a 16-frame question end to end (0 when skipped).
	VideoFrames int     `json:"video_frames"`
	VideoMS     float64 `json:"video_ms"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`
}

// benchModels measures the bundled model (when there is one, or dir) and a
// ViT-B/16 + T5-base shaped model with random Q8_0 weights.
func benchModels(ctx context.Context, dir string, threads, frames int, base bool, log io.Writer) ([]modelResult, error) {
	type target struct{ name, dir string }
	var targets []target
	if dir == "" {
		if d, err := defaultModelDir(); err == nil {
			dir = d
		}
	}
	if dir != "" {
		targets = append(targets, target{filepath.Base(filepath.Clean(dir)), dir})
	}
	if base {
		bd := filepath.Join(os.TempDir(), "palid-bench-base-q8_0")
		if _, err := os.Stat(filepath.Join(bd, "mmproj.gguf")); err != nil {
			fmt.Fprintf(log, "writing a random ViT-B/16 + T5-base model to %s ...\n", bd)
			if err := os.MkdirAll(bd, 0o755); err != nil {
				return nil, err
			}
			if err := palirt.WriteRandomModel(bd, "base", neon.Q8_0, 1); err != nil {
				return nil, err
			}
		}
		targets = append(targets, target{"vit-b16+t5-base (random)", bd})
	}
	var out []modelResult
	for _, tg := range targets {
		fmt.Fprintf(log, "measuring %s ...\n", tg.name)
		r, err := benchModel(ctx, tg.name, tg.dir, threads, frames)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tg.name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func benchModel(ctx context.Context, name, dir string, threads, frames int) (modelResult, error) {
	r := modelResult{Name: name, Dir: dir}
	t0 := time.Now()
	m, err := palirt.Load(dir, palirt.Options{Threads: threads})
	if err != nil {
		return r, err
	}
	defer m.Close()
	r.LoadMS = msSince(t0)
	inf := m.Info()
	r.WeightType = inf.TextType
	n := m.ImageSize()
	img := palirt.Image{Width: n, Height: n, Pix: make([]float32, 3*n*n)}
	for i := range img.Pix {
		img.Pix[i] = float32(i%255)/127.5 - 1
	}
	// Warm up, then time the vision tower alone.
	if _, err := m.EncodeImage(ctx, img); err != nil {
		return r, err
	}
	const reps = 3
	t0 = time.Now()
	for i := 0; i < reps; i++ {
		if _, err := m.EncodeImage(ctx, img); err != nil {
			return r, err
		}
	}
	r.ImageEncodeMS = msSince(t0) / reps

	// One frame and a 16-token prompt: prefill and decode speeds.
	prompt := m.Tokenizer().Encode("answer en what color is the circle in the middle of the picture?")
	for len(prompt) < 15 {
		prompt = append(prompt, prompt[len(prompt)-1])
	}
	prompt = prompt[:15] // + EOS = 16
	res, err := m.Generate(ctx, palirt.Request{Frames: []palirt.Image{img}, PromptIDs: prompt, MaxTokens: 32})
	if err != nil {
		return r, err
	}
	r.PrefillTokens = inf.VisionTokens + len(prompt) + 1
	if s := res.Timings["encode"] / 1000; s > 0 {
		r.PrefillTokensSec = float64(r.PrefillTokens) / s
	}
	r.DecodeTokens = len(res.Tokens)
	if s := res.Timings["decode"] / 1000; s > 0 && r.DecodeTokens > 0 {
		r.DecodeTokensSec = float64(r.DecodeTokens) / s
		r.DecodeMSPerToken = res.Timings["decode"] / float64(r.DecodeTokens)
	}
	if frames > 0 {
		fs := make([]palirt.Image, frames)
		for i := range fs {
			fs[i] = img
		}
		t0 = time.Now()
		if _, err := m.Generate(ctx, palirt.Request{Frames: fs, Prompt: "answer en which way is the red circle moving?", MaxTokens: 8}); err != nil {
			return r, err
		}
		r.VideoFrames, r.VideoMS = frames, msSince(t0)
	}
	r.PeakRSSMB = peakRSSMB()
	return r, nil
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// peakRSSMB is the process's peak resident set (VmHWM), in MiB; 0 where
// /proc is not there.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

func writeModelTable(w io.Writer, rs []modelResult) error {
	if len(rs) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tweights\tload ms\timage encode ms\tprefill tok/s\tdecode tok/s\tdecode ms/tok\t16-frame question ms\tpeak RSS MiB\t")
	for _, r := range rs {
		video := "-"
		if r.VideoFrames > 0 {
			video = fmt.Sprintf("%.0f", r.VideoMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%.0f\t\n", r.Name, r.WeightType, r.LoadMS,
			r.ImageEncodeMS, r.PrefillTokensSec, r.DecodeTokensSec, r.DecodeMSPerToken, video, r.PeakRSSMB)
	}
	return tw.Flush()
}

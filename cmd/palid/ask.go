package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	palirt "github.com/palid/palid/runtime"
)

// maxImageSide bounds the images ask decodes.
const maxImageSide = 8192

// maxVideoFrames bounds the frames read from a video file before sampling.
const maxVideoFrames = 512

func init() {
	register("ask", "answer one question about an image, a clip or a synthetic scene, offline", func(args []string) error {
		return ask(args, os.Stdout)
	})
}

// askOptions are the flags of palid ask.
type askOptions struct {
	model     string
	image     string
	video     string
	synthetic string
	frames    int
	stride    int
	beam      int
	maxTokens int
	threads   int
	lang      string
	json      bool
	prompt    string
	framesSet bool
}

func parseAsk(args []string) (askOptions, error) {
	var o askOptions
	fs := newFlags("ask", "PROMPT")
	fs.StringVar(&o.model, "model", "", "model directory `DIR` (default: the bundled model)")
	fs.StringVar(&o.image, "image", "", "image `FILE` (PNG, JPEG or GIF)")
	fs.StringVar(&o.video, "video", "", "clip: a folder of image files in name order, an animated GIF, or a video `FILE` (needs ffmpeg)")
	fs.StringVar(&o.synthetic, "synthetic", "", "render the synthetic scene `SEED` (with --frames N > 1: the synthetic clip SEED)")
	fs.IntVar(&o.frames, "frames", 16, "frames `N` sampled from a clip (1..16)")
	fs.IntVar(&o.stride, "stride", 0, "take every `S`th frame from the first (default: spread evenly over the clip, first and last included)")
	fs.IntVar(&o.beam, "beam", 1, "beam width `K` (1: greedy)")
	fs.IntVar(&o.maxTokens, "max-tokens", palirt.DefaultMaxTokens, "generate at most `N` tokens")
	fs.IntVar(&o.threads, "threads", 0, "worker threads `N` (default: one per CPU)")
	fs.StringVar(&o.lang, "lang", "en", "language `CODE` of plain-words questions")
	fs.BoolVar(&o.json, "json", false, `print {"answer", "tokens", "logprobs", "timings_ms"} as JSON`)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "frames" {
			o.framesSet = true
		}
	})
	o.prompt = strings.TrimSpace(strings.Join(fs.Args(), " "))
	sources := 0
	for _, s := range []string{o.image, o.video, o.synthetic} {
		if s != "" {
			sources++
		}
	}
	switch {
	case sources != 1:
		return o, badInputf("give exactly one of --image FILE, --video FILE|DIR, --synthetic SEED")
	case o.prompt == "":
		return o, badInputf("missing PROMPT (usage: palid ask [flags] (--image FILE | --video FILE|DIR | --synthetic SEED) PROMPT)")
	case o.frames < 1 || o.frames > palirt.MaxFrames:
		return o, badInputf("--frames %d: want 1..%d", o.frames, palirt.MaxFrames)
	case o.framesSet && o.image != "":
		return o, badInputf("--frames applies to --video and --synthetic, not --image")
	case o.stride < 0:
		return o, badInputf("--stride %d: want a positive stride", o.stride)
	case o.stride > 0 && o.image != "":
		return o, badInputf("--stride applies to --video and --synthetic, not --image")
	case o.beam < 1 || o.beam > 16:
		return o, badInputf("--beam %d: want 1..16", o.beam)
	case o.maxTokens < 1 || o.maxTokens > 1024:
		return o, badInputf("--max-tokens %d: want 1..1024", o.maxTokens)
	case o.threads < 0:
		return o, badInputf("--threads %d: want 0 (all CPUs) or more", o.threads)
	}
	if o.synthetic != "" {
		if _, err := strconv.ParseInt(o.synthetic, 10, 64); err != nil {
			return o, badInputf("--synthetic %q: want an integer seed", o.synthetic)
		}
	}
	return o, nil
}

// askOutput is what --json prints.
type askOutput struct {
	Answer    string             `json:"answer"`
	Tokens    []int              `json:"tokens"`
	Logprobs  []float32          `json:"logprobs"`
	TimingsMS map[string]float64 `json:"timings_ms"`
}

// ask runs "palid ask".
func ask(args []string, out io.Writer) error {
	o, err := parseAsk(args)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// Input first: a bad image is reported before the model is mapped.
	imgs, err := o.frameImages()
	if err != nil {
		return err
	}
	dir := o.model
	if dir == "" {
		if dir, err = defaultModelDir(); err != nil {
			return badInput(err)
		}
	}
	m, err := palirt.Load(dir, palirt.Options{Threads: o.threads})
	if err != nil {
		return badInput(err)
	}
	defer m.Close()
	loaded := time.Now()
	size := m.ImageSize()
	if imgs == nil { // synthetic: rendered at the model's size
		if imgs, err = o.syntheticFrames(size); err != nil {
			return err
		}
	}
	frames := make([]palirt.Image, len(imgs))
	for i, img := range imgs {
		frames[i] = palirt.Image{Width: size, Height: size, Pix: capture.Normalize(img, size, size)}
	}
	prep := time.Now()

	res, err := m.Generate(ctx, palirt.Request{
		Frames:    frames,
		Prompt:    palirt.BuildPrompt(o.prompt, o.lang),
		MaxTokens: o.maxTokens,
		Beam:      o.beam,
	})
	if err != nil {
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	timings := map[string]float64{
		"load":       ms(loaded.Sub(start)),
		"preprocess": ms(prep.Sub(loaded)),
	}
	for k, v := range res.Timings {
		timings[k] = v
	}
	timings["total"] = ms(time.Since(start))
	if !o.json {
		_, err := fmt.Fprintln(out, res.Text)
		return err
	}
	r := askOutput{Answer: res.Text, Tokens: res.Tokens, Logprobs: res.Logprobs, TimingsMS: timings}
	if r.Tokens == nil {
		r.Tokens = []int{}
	}
	if r.Logprobs == nil {
		r.Logprobs = []float32{}
	}
	enc := json.NewEncoder(out)
	return enc.Encode(r)
}

// frameImages decodes the --image or --video input; it returns nil, nil
// for --synthetic (rendered once the model size is known).
func (o askOptions) frameImages() ([]image.Image, error) {
	switch {
	case o.image != "":
		img, err := loadImage(o.image)
		if err != nil {
			return nil, badInput(err)
		}
		return []image.Image{img}, nil
	case o.video != "":
		clip, err := loadClip(o.video)
		if err != nil {
			return nil, badInput(err)
		}
		if len(clip) == 0 {
			return nil, badInputf("%s: no frames", o.video)
		}
		return pick(clip, sampleFrames(len(clip), o.frames, o.stride)), nil
	}
	return nil, nil
}

// syntheticFrames renders the synthetic scene (one frame) or, when more
// than one frame was asked for, samples the synthetic clip.
func (o askOptions) syntheticFrames(size int) ([]image.Image, error) {
	seed, _ := strconv.ParseInt(o.synthetic, 10, 64)
	if !o.framesSet || o.frames == 1 {
		return []image.Image{synth.NewScene(seed).Render(size)}, nil
	}
	var clip []image.Image
	for _, f := range synth.NewClip(seed).Frames(size) {
		clip = append(clip, f)
	}
	if len(clip) == 0 {
		return nil, fmt.Errorf("synthetic clip %d has no frames", seed)
	}
	return pick(clip, sampleFrames(len(clip), o.frames, o.stride)), nil
}

func pick(clip []image.Image, idx []int) []image.Image {
	out := make([]image.Image, len(idx))
	for i, j := range idx {
		out[i] = clip[j]
	}
	return out
}

// sampleFrames chooses up to n of total frames. With a stride s > 0 it
// takes frames 0, s, 2s, ... (at most n). Otherwise it spreads n frames
// evenly over the clip, first and last included; one frame is the last
// (the newest); a clip of at most n frames is taken whole.
func sampleFrames(total, n, s int) []int {
	var idx []int
	switch {
	case s > 0:
		for i := 0; i < total && len(idx) < n; i += s {
			idx = append(idx, i)
		}
	case total <= n:
		for i := 0; i < total; i++ {
			idx = append(idx, i)
		}
	case n == 1:
		idx = []int{total - 1}
	default:
		for i := 0; i < n; i++ {
			idx = append(idx, (i*(total-1)+(n-1)/2)/(n-1))
		}
	}
	return idx
}

// loadImage decodes a PNG, JPEG or GIF file (the first frame of a GIF).
func loadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PNG, JPEG or GIF image (%v)", path, err)
	}
	if cfg.Width > maxImageSide || cfg.Height > maxImageSide {
		return nil, fmt.Errorf("%s: image is %dx%d, larger than %d a side", path, cfg.Width, cfg.Height, maxImageSide)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return img, nil
}

// loadClip reads a clip: a directory of image files in name order, an
// animated GIF, or any other video file through ffmpeg (at most
// maxVideoFrames frames).
func loadClip(path string) ([]image.Image, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".png", ".jpg", ".jpeg", ".gif":
				if !e.IsDir() {
					names = append(names, e.Name())
				}
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no PNG, JPEG or GIF files", path)
		}
		if len(names) > maxVideoFrames {
			return nil, fmt.Errorf("%s: %d frames, at most %d", path, len(names), maxVideoFrames)
		}
		clip := make([]image.Image, len(names))
		for i, n := range names {
			if clip[i], err = loadImage(filepath.Join(path, n)); err != nil {
				return nil, err
			}
		}
		return clip, nil
	}
	if strings.EqualFold(filepath.Ext(path), ".gif") {
		return loadGIF(path)
	}
	src, err := capture.OpenWith("ffmpeg:"+path, capture.Options{Once: true, Unpaced: true})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var clip []image.Image
	for len(clip) < maxVideoFrames {
		f, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		clip = append(clip, f.Image)
	}
	return clip, nil
}

// loadGIF decodes every frame of an animated GIF, composed on the canvas
// as a viewer shows them.
func loadGIF(path string) ([]image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a GIF (%v)", path, err)
	}
	w, h := g.Config.Width, g.Config.Height
	if w <= 0 || h <= 0 || w > maxImageSide || h > maxImageSide {
		return nil, fmt.Errorf("%s: GIF canvas is %dx%d", path, w, h)
	}
	if len(g.Image) > maxVideoFrames {
		g.Image = g.Image[:maxVideoFrames]
	}
	canvas := image.NewRGBA(image.Rect(0, 0, w, h))
	var clip []image.Image
	for i, fr := range g.Image {
		var prev *image.RGBA
		if i < len(g.Disposal) && g.Disposal[i] == gif.DisposalPrevious {
			prev = image.NewRGBA(canvas.Rect)
			copy(prev.Pix, canvas.Pix)
		}
		draw.Draw(canvas, fr.Bounds(), fr, fr.Bounds().Min, draw.Over)
		out := image.NewRGBA(canvas.Rect)
		copy(out.Pix, canvas.Pix)
		clip = append(clip, out)
		if i < len(g.Disposal) {
			switch g.Disposal[i] {
			case gif.DisposalBackground:
				draw.Draw(canvas, fr.Bounds(), image.Transparent, image.Point{}, draw.Src)
			case gif.DisposalPrevious:
				canvas = prev
			}
		}
	}
	return clip, nil
}

package runtime

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
)

func loadTiny(t *testing.T, c randomConfig, seed uint64) (*Model, string) {
	t.Helper()
	dir := tinyModelDir(t, c, seed)
	m, err := Load(dir, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, dir
}

// closeTo reports the largest difference between got and want relative to
// the largest magnitude of want (at least 1).
func relDiff(got []float32, want []float64) float64 {
	scale, diff := 1.0, 0.0
	for i := range want {
		scale = math.Max(scale, math.Abs(want[i]))
		diff = math.Max(diff, math.Abs(float64(got[i])-want[i]))
	}
	return diff / scale
}

func TestEngineMatchesNaive(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*randomConfig)
	}{
		{"gelu-untied", func(c *randomConfig) {}},
		{"silu-tied", func(c *randomConfig) { c.silu, c.tied = true, true }},
		{"short-distance", func(c *randomConfig) { c.buckets, c.maxDist = 8, 12 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig()
			tc.mod(&c)
			m, dir := loadTiny(t, c, 7)
			nm := loadNaive(t, dir, c)
			frames := []Image{randomImage(c.image, 1), randomImage(c.image, 2)}

			// Vision tower alone.
			got, err := m.EncodeImage(context.Background(), frames[0])
			if err != nil {
				t.Fatal(err)
			}
			want := nm.vision(frames[0])
			for i, row := range want {
				if d := relDiff(got[i*c.d:(i+1)*c.d], row); d > 1e-4 {
					t.Fatalf("visual token %d differs by %.2g (relative)", i, d)
				}
			}

			// Whole question, greedy, per-step logits.
			ids := m.Tokenizer().Encode("answer en what color is the circle?")
			res, err := m.Generate(context.Background(), Request{Frames: frames, PromptIDs: ids, MaxTokens: 6, KeepLogits: true})
			if err != nil {
				t.Fatal(err)
			}
			wantToks, wantLogits := nm.greedy(frames, ids, 6)
			if !equalInts(res.Tokens, wantToks) {
				t.Fatalf("tokens %v, naive model %v", res.Tokens, wantToks)
			}
			if len(res.StepLogits) != len(res.Tokens) || len(res.Logprobs) != len(res.Tokens) {
				t.Fatalf("%d tokens, %d step logits, %d logprobs", len(res.Tokens), len(res.StepLogits), len(res.Logprobs))
			}
			for s := range wantLogits {
				if d := relDiff(res.StepLogits[s], wantLogits[s]); d > 1e-4 {
					t.Errorf("step %d: logits differ by %.2g (relative)", s, d)
				}
				lp := make([]float64, c.vocab)
				logSoftmax(lp, res.StepLogits[s])
				if math.Abs(lp[res.Tokens[s]]-float64(res.Logprobs[s])) > 1e-5 || res.Logprobs[s] > 0 {
					t.Errorf("step %d: logprob %g, log-softmax of the logits gives %g", s, res.Logprobs[s], lp[res.Tokens[s]])
				}
			}

			// Beam search through the engine's KV cache equals beam search
			// over the naive model recomputing every prefix.
			x := append(append(nm.vision(frames[0]), nm.vision(frames[1])...), nm.embed(append(append([]int(nil), ids...), 1))...)
			enc := nm.encoder(x)
			var seqs [][]int
			naiveStep := func(_ context.Context, parents, tokens []int) ([]float32, error) {
				var next [][]int
				var out []float32
				for i, p := range parents {
					var prev []int
					if seqs != nil {
						prev = seqs[p]
					}
					s := append(append([]int(nil), prev...), tokens[i])
					next = append(next, s)
					for _, v := range nm.decoderLogits(enc, s) {
						out = append(out, float32(v))
					}
				}
				seqs = next
				return out, nil
			}
			wantBeam, err := search(context.Background(), naiveStep, c.vocab, 0, 1, 3, 5, false)
			if err != nil {
				t.Fatal(err)
			}
			res, err = m.Generate(context.Background(), Request{Frames: frames, PromptIDs: ids, MaxTokens: 5, Beam: 3})
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(res.Tokens, wantBeam.tokens) {
				t.Fatalf("beam 3: tokens %v, naive model %v", res.Tokens, wantBeam.tokens)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuantizedCloseToFloat(t *testing.T) {
	c := tinyConfig()
	mf, _ := loadTiny(t, c, 3)
	c.quant = neon.Q8_0
	mq, _ := loadTiny(t, c, 3)
	if got := mq.Info().TextType; got != "q8_0" {
		t.Fatalf("text weights are %s, want q8_0", got)
	}
	img := randomImage(c.image, 9)
	a, err := mf.EncodeImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mq.EncodeImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, len(a))
	for i, v := range a {
		want[i] = float64(v)
	}
	if d := relDiff(b, want); d > 0.05 || d == 0 {
		t.Fatalf("q8_0 visual tokens differ from f32 by %.3g (relative), want small but nonzero", d)
	}
}

func TestGenerateOptions(t *testing.T) {
	c := tinyConfig()
	m, _ := loadTiny(t, c, 11)
	ctx := context.Background()
	img := randomImage(c.image, 4)
	greedy, err := m.Generate(ctx, Request{Frames: []Image{img}, Prompt: "caption en", MaxTokens: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(greedy.Tokens) == 0 || len(greedy.Tokens) > 7 {
		t.Fatalf("%d tokens for max 7", len(greedy.Tokens))
	}
	for _, k := range []string{"vision", "encode", "decode", "total"} {
		if _, ok := greedy.Timings[k]; !ok {
			t.Errorf("timing %q missing", k)
		}
	}
	beam1, err := m.Generate(ctx, Request{Frames: []Image{img}, Prompt: "caption en", MaxTokens: 7, Beam: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(greedy.Tokens, beam1.Tokens) {
		t.Fatalf("beam 1 %v differs from greedy %v", beam1.Tokens, greedy.Tokens)
	}
	// The token cache path gives the same answer as frames.
	vis, err := m.EncodeImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := m.Generate(ctx, Request{Visual: [][]float32{vis}, Prompt: "caption en", MaxTokens: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(greedy.Tokens, cached.Tokens) || greedy.Text != cached.Text {
		t.Fatalf("visual-token request %v %q, frames %v %q", cached.Tokens, cached.Text, greedy.Tokens, greedy.Text)
	}
	// A prompt without frames is fine (text only).
	if _, err := m.Generate(ctx, Request{Prompt: "answer en what is red?", MaxTokens: 2}); err != nil {
		t.Fatal(err)
	}
	// Cancellation.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Generate(cctx, Request{Frames: []Image{img}, Prompt: "caption en"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
}

func TestGenerateBadInput(t *testing.T) {
	c := tinyConfig()
	m, _ := loadTiny(t, c, 5)
	img := randomImage(c.image, 1)
	many := make([]Image, 17)
	for i := range many {
		many[i] = img
	}
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Frames: []Image{img}}, "empty prompt"},
		{Request{Frames: []Image{img}, Prompt: "  "}, "empty prompt"},
		{Request{Frames: many, Prompt: "caption en"}, "17 frames"},
		{Request{Frames: []Image{{Width: 30, Height: 32, Pix: make([]float32, 3*30*32)}}, Prompt: "caption en"}, "not a multiple of the patch size 8"},
		{Request{Frames: []Image{{Width: 32, Height: 32, Pix: make([]float32, 10)}}, Prompt: "caption en"}, "has 10 values"},
		{Request{Visual: [][]float32{make([]float32, 65)}, Prompt: "caption en"}, "not a whole number of rows"},
		{Request{PromptIDs: []int{5, 1000}}, "outside the vocabulary"},
		{Request{Prompt: "caption en", MaxTokens: -1}, "max tokens"},
		{Request{Frames: []Image{img}, Visual: [][]float32{make([]float32, 64)}, Prompt: "x"}, "both frames and visual"},
	} {
		_, err := m.Generate(context.Background(), tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*randomConfig)
		want string
	}{
		{func(c *randomConfig) { c.wrong = "enc.blk.1.attn_k.weight" }, "enc.blk.1.attn_k.weight has shape [64 65], want [64 64]"},
		{func(c *randomConfig) { c.wrong = "v.blk.0.ffn_up.bias" }, "v.blk.0.ffn_up.bias has shape [97], want [96]"},
		{func(c *randomConfig) { c.wrong = "v.patch_embd.weight" }, "v.patch_embd.weight has shape [8 8 3 65], want [8 8 3 64]"},
		{func(c *randomConfig) { c.drop = "t5.attention.relative_max_distance" }, `missing metadata key "t5.attention.relative_max_distance"`},
		{func(c *randomConfig) { c.drop = "clip.vision.patch_size" }, `mmproj.gguf: missing metadata key "clip.vision.patch_size"`},
	} {
		c := tinyConfig()
		tc.mod(&c)
		dir := tinyModelDir(t, c, 1)
		m, err := Load(dir, Options{Threads: 1})
		if err == nil {
			m.Close()
			t.Errorf("%+v: loaded", c)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q, want one containing %q", err, tc.want)
		}
	}
	if _, err := Load(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "model.gguf") {
		t.Errorf("empty dir: %v", err)
	}
}

func TestInterpolatedPositions(t *testing.T) {
	// A frame of another size runs with interpolated position embeddings.
	c := tinyConfig()
	m, _ := loadTiny(t, c, 13)
	img := randomImage(48, 3)
	v, err := m.EncodeImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 36*c.d {
		t.Fatalf("%d values, want 36 tokens of %d", len(v), c.d)
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatal("non-finite visual token")
		}
	}
}

func TestBuildPrompt(t *testing.T) {
	for _, tc := range []struct{ q, lang, want string }{
		{"what color is the circle?", "", "answer en what color is the circle?"},
		{"  is there a package?  ", "de", "answer de is there a package?"},
		{"caption en", "", "caption en"},
		{"answer fr quelle couleur?", "en", "answer fr quelle couleur?"},
		{"ocr", "", "ocr"},
		{"detect car", "", "detect car"},
		{"Describe the scene", "", "Describe the scene"},
		{"captions are fun", "", "answer en captions are fun"},
		{"\tdetect\tdog\n", "", "detect\tdog"},
	} {
		if got := BuildPrompt(tc.q, tc.lang); got != tc.want {
			t.Errorf("BuildPrompt(%q, %q) = %q, want %q", tc.q, tc.lang, got, tc.want)
		}
	}
}

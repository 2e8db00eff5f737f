package delegate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// goldenCase is the part of runtime/testdata/*/golden.json this test reads.
type goldenCase struct {
	Name          string `json:"name"`
	Frames        int    `json:"frames"`
	Width         int    `json:"width"`
	Height        int    `json:"height"`
	Pixels        string `json:"pixels"`
	Prompt        string `json:"prompt"`
	TrainedAnswer string `json:"trained_answer"`
}

// goldenFrames reads a case's frames (u8 CHW, value v/127.5 - 1).
func goldenFrames(t *testing.T, dir string, c goldenCase) []palirt.Image {
	raw, err := os.ReadFile(filepath.Join(dir, c.Pixels))
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * c.Width * c.Height
	if len(raw) != n*c.Frames {
		t.Fatalf("%s: %d bytes, want %d", c.Pixels, len(raw), n*c.Frames)
	}
	var out []palirt.Image
	for f := 0; f < c.Frames; f++ {
		pix := make([]float32, n)
		for i := range pix {
			pix[i] = float32(raw[f*n+i])/127.5 - 1
		}
		out = append(out, palirt.Image{Width: c.Width, Height: c.Height, Pix: pix})
	}
	return out
}

// TestAnswersThroughTFLite answers the tiny models' golden questions with
// the vision tower on TFLite (int8) and on the CPU and compares the
// answers.
func TestAnswersThroughTFLite(t *testing.T) {
	lib := tfliteLib(t)
	total, same := 0, 0
	for _, name := range []string{"pali3_tiny_a", "pali3_tiny_b"} {
		m := tinyModel(t, name, neon.Q8_0)
		b, err := Select(context.Background(), Config{Backend: BackendTFLite, Library: lib, Model: exportTiny(t, m, 32), Threads: 2}, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		dir := filepath.Join("..", "runtime", "testdata", name)
		raw, err := os.ReadFile(filepath.Join(dir, "golden.json"))
		if err != nil {
			t.Fatal(err)
		}
		var golden struct{ Cases []goldenCase }
		if err := json.Unmarshal(raw, &golden); err != nil {
			t.Fatal(err)
		}
		for _, c := range golden.Cases {
			if c.Width != m.ImageSize() || c.Height != m.ImageSize() {
				continue // the exported model has a static size
			}
			frames := goldenFrames(t, dir, c)
			ctx := context.Background()
			cpu, err := m.Generate(ctx, palirt.Request{Frames: frames, Prompt: c.Prompt, MaxTokens: 16})
			if err != nil {
				t.Fatal(err)
			}
			var visual [][]float32
			for _, f := range frames {
				v, err := b.EncodeImage(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				visual = append(visual, v)
			}
			npu, err := m.Generate(ctx, palirt.Request{Visual: visual, Prompt: c.Prompt, MaxTokens: 16})
			if err != nil {
				t.Fatal(err)
			}
			total++
			if cpu.Text == npu.Text && slices.Equal(cpu.Tokens, npu.Tokens) {
				same++
			}
			// The tiny models know their trained answers and babble past
			// them: the TFLite path must give the trained answer at least
			// as far as the CPU path does.
			if pc, pn := commonPrefix(cpu.Text, c.TrainedAnswer), commonPrefix(npu.Text, c.TrainedAnswer); pn < pc {
				t.Errorf("%s/%s %q: cpu %q matches the trained %q for %d bytes, tflite %q for only %d",
					name, c.Name, c.Prompt, cpu.Text, c.TrainedAnswer, pc, npu.Text, pn)
			}
			t.Logf("%s/%s: cpu %q, tflite %q (trained %q)", name, c.Name, cpu.Text, npu.Text, c.TrainedAnswer)
		}
	}
	t.Logf("ANSWERS %d of %d identical through the int8 TFLite tower", same, total)
	if total < 6 {
		t.Fatalf("only %d golden cases at the model size", total)
	}
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

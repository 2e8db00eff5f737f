package delegate

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	palirt "github.com/palid/palid/runtime"
)

// bundledAgreementFloor is the share of answers the TFLite path must give
// exactly as the CPU path does on the bundled model (measured: see
// docs/npu.md).
const bundledAgreementFloor = 0.9

// TestBundledModelThroughTFLite exports the bundled demo model's vision
// tower (calibrated on training-range scenes), runs it in the real TFLite
// library, and asks every question of held-out scenes and clips through
// both backends: the answers must agree, and the TFLite path must be about
// as often right as the CPU path.
func TestBundledModelThroughTFLite(t *testing.T) {
	lib := tfliteLib(t)
	dir := filepath.Join("..", "models", "default")
	if _, err := os.Stat(filepath.Join(dir, "model.gguf")); err != nil {
		t.Fatalf("bundled model missing: %v", err)
	}
	m, err := palirt.Load(dir, palirt.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	size := m.ImageSize()
	path := exportTiny(t, m, 64)
	b, err := Select(context.Background(), Config{Backend: BackendTFLite, Library: lib, Model: path, Threads: 2}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	total, same, cpuRight, npuRight := 0, 0, 0, 0
	ask := func(frames []palirt.Image, qas []synth.QA) {
		var visual [][]float32
		for _, f := range frames {
			v, err := b.EncodeImage(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			visual = append(visual, v)
		}
		for _, qa := range qas {
			cpu, err := m.Generate(ctx, palirt.Request{Frames: frames, Prompt: qa.Prompt, MaxTokens: 24})
			if err != nil {
				t.Fatal(err)
			}
			npu, err := m.Generate(ctx, palirt.Request{Visual: visual, Prompt: qa.Prompt, MaxTokens: 24})
			if err != nil {
				t.Fatal(err)
			}
			total++
			if cpu.Text == npu.Text {
				same++
			}
			if cpu.Text == qa.Answer {
				cpuRight++
			}
			if npu.Text == qa.Answer {
				npuRight++
			}
		}
	}
	for i := int64(0); i < 12; i++ { // held-out scenes (dataset seed 9)
		sc := synth.NewScene(synth.ItemSeed(9, int(100+i)))
		img := sc.Render(size)
		ask([]palirt.Image{{Width: size, Height: size, Pix: capture.Normalize(img, size, size)}}, sc.Questions())
	}
	for i := int64(0); i < 3; i++ { // held-out clips (dataset seed 8)
		cl := synth.NewClip(synth.ItemSeed(8, int(100+i)))
		var frames []palirt.Image
		for _, f := range cl.Frames(size) {
			frames = append(frames, palirt.Image{Width: size, Height: size, Pix: capture.Normalize(f, size, size)})
		}
		ask(frames, cl.Questions())
	}
	agree := float64(same) / float64(total)
	t.Logf("bundled model, %d questions: TFLite answers identical to CPU %.1f%%; right: CPU %.1f%%, TFLite %.1f%%",
		total, 100*agree, 100*float64(cpuRight)/float64(total), 100*float64(npuRight)/float64(total))
	if agree < bundledAgreementFloor {
		t.Errorf("TFLite and CPU answers agree on %.1f%% of questions, below %.0f%%", 100*agree, 100*bundledAgreementFloor)
	}
}

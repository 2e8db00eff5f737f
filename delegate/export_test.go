package delegate

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
	"github.com/palid/palid/runtime/convert"
)

// tinyModels caches the reference engineer's tiny checkpoints converted to
// palid model directories, per quantization.
var tinyModels struct {
	sync.Mutex
	dirs map[string]string
}

// tinyModel converts runtime/testdata/<name> with quant and loads it.
func tinyModel(t testing.TB, name string, quant neon.DType) *palirt.Model {
	t.Helper()
	tinyModels.Lock()
	defer tinyModels.Unlock()
	if tinyModels.dirs == nil {
		tinyModels.dirs = map[string]string{}
	}
	key := name + "/" + quant.String()
	dir, ok := tinyModels.dirs[key]
	if !ok {
		var err error
		dir, err = os.MkdirTemp("", "palid-delegate-"+name)
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join("..", "runtime", "testdata", name)
		if err := convert.Convert(context.Background(), convert.Options{Sources: []string{src}, OutDir: dir, Quant: quant}); err != nil {
			t.Fatalf("convert %s: %v", src, err)
		}
		tinyModels.dirs[key] = dir
	}
	m, err := palirt.Load(dir, palirt.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tinyModels.dirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// synthFrames renders n synthetic scenes (seeds from seed) at size.
func synthFrames(n int, seed int64, size int) []palirt.Image {
	out := make([]palirt.Image, n)
	for i := range out {
		img := synth.NewScene(seed + int64(i)).Render(size)
		out[i] = palirt.Image{Width: size, Height: size, Pix: capture.Normalize(img, size, size)}
	}
	return out
}

// agreement compares token matrices: mean cosine similarity per token,
// the worst token's cosine, and the max abs error.
type agreement struct {
	meanCos, minCos, maxAbs float64
	tokens                  int
}

func (a *agreement) add(got, want []float32, dim int) {
	if a.tokens == 0 {
		a.minCos = 1
	}
	for t := 0; t < len(want)/dim; t++ {
		g, w := got[t*dim:(t+1)*dim], want[t*dim:(t+1)*dim]
		for i := range g {
			a.maxAbs = max(a.maxAbs, math.Abs(float64(g[i]-w[i])))
		}
		c := cosine(g, w)
		a.meanCos = (a.meanCos*float64(a.tokens) + c) / float64(a.tokens+1)
		a.minCos = min(a.minCos, c)
		a.tokens++
	}
}

// TestGraphMatchesRuntime evaluates the export graph in float32 and
// compares with palid's own ViT: the graph (LayerNorm through L2
// normalization with folded weights, per-head attention as FC, GELU from
// LOGISTIC) is the same function.
func TestGraphMatchesRuntime(t *testing.T) {
	pool := neon.NewPool(2)
	defer pool.Close()
	for _, name := range []string{"pali3_tiny_a", "pali3_tiny_b"} {
		t.Run(name, func(t *testing.T) {
			m := tinyModel(t, name, neon.F32)
			vt := m.VisionTower()
			g, err := buildViT(vt)
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range synthFrames(3, 100, m.ImageSize()) {
				want, err := m.EncodeImage(context.Background(), img)
				if err != nil {
					t.Fatal(err)
				}
				x, _ := frameHWC(img, m.ImageSize())
				for _, pool := range []*neon.Pool{nil, pool} {
					v, err := g.eval(pool, x)
					if err != nil {
						t.Fatal(err)
					}
					got := v[g.outputs[0]]
					var a agreement
					a.add(got, want, vt.ProjDim)
					if a.maxAbs > 1e-3 || a.minCos < 0.99999 {
						t.Fatalf("float graph (pool %v) vs runtime: max abs %.3g, min cosine %.6f", pool != nil, a.maxAbs, a.minCos)
					}
				}
			}
		})
	}
}

// exportTiny exports a tiny model calibrated on synthetic frames.
func exportTiny(t testing.TB, m *palirt.Model, calib int) string {
	t.Helper()
	data, rep, err := ExportVision(context.Background(), m.VisionTower(), ExportOptions{
		Calibration: synthFrames(calib, 1000, m.ImageSize()),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exported %d bytes, %d ops: %s", rep.Bytes, rep.NumOps, rep.Ops)
	path := filepath.Join(t.TempDir(), "vision.tflite")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExportAgreement runs the exported int8 tower in the real TFLite
// library and compares its visual tokens with palid's CPU path on frames
// that were not used for calibration. The figures go to docs/npu.md.
func TestExportAgreement(t *testing.T) {
	lib := tfliteLib(t)
	for _, c := range []struct {
		name  string
		quant neon.DType
	}{{"pali3_tiny_a", neon.F32}, {"pali3_tiny_a", neon.Q8_0}, {"pali3_tiny_b", neon.Q8_0}} {
		t.Run(c.name+"_"+c.quant.String(), func(t *testing.T) {
			m := tinyModel(t, c.name, c.quant)
			path := exportTiny(t, m, 32)
			b, err := NewTFLite(Config{Library: lib, Model: path, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			const frames = 16
			var a agreement
			for _, img := range synthFrames(frames, 5000, m.ImageSize()) {
				want, err := m.EncodeImage(context.Background(), img)
				if err != nil {
					t.Fatal(err)
				}
				got, err := b.EncodeImage(context.Background(), img)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("tflite gave %d values, cpu %d", len(got), len(want))
				}
				a.add(got, want, m.Info().TextWidth)
			}
			t.Logf("AGREEMENT %s %s: %d frames, %d tokens: mean cosine %.4f, min cosine %.4f, max abs error %.4f",
				c.name, c.quant, frames, a.tokens, a.meanCos, a.minCos, a.maxAbs)
			if a.meanCos < 0.98 || a.minCos < 0.9 {
				t.Errorf("int8 tower disagrees with the CPU path: mean cosine %.4f, min %.4f", a.meanCos, a.minCos)
			}
		})
	}
}

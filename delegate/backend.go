package delegate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"

	palirt "github.com/palid/palid/runtime"
)

// VisionBackend turns a frame into projected visual tokens (tokens x text
// width, row-major), on the CPU kernels or on an accelerator. The rest of
// palid hands the tokens to runtime.Request.Visual and does not know which
// backend ran.
type VisionBackend interface {
	EncodeImage(ctx context.Context, img palirt.Image) ([]float32, error)
	// Name is "cpu", "tflite" or "tflite+<delegate library>".
	Name() string
	Close() error
}

// Backend names accepted by Config.Backend.
const (
	BackendCPU    = "cpu"
	BackendTFLite = "tflite"
	BackendAuto   = "auto"
)

// VisionFile is the exported tower's usual name inside a model directory
// (DESIGN.md §3: model.gguf, mmproj.gguf and optionally vision.tflite).
const VisionFile = "vision.tflite"

// DefaultMinCosine is the agreement the auto backend demands of the
// accelerator at start-up: the mean cosine similarity, over every visual
// token of the check frames, between its tokens and the CPU path's.
const DefaultMinCosine = 0.98

// Config selects and configures the vision backend.
type Config struct {
	Backend string // "cpu" (default), "tflite" or "auto"
	Library string // path of libtensorflowlite_c.so
	Model   string // the exported vision .tflite (palid export-tflite), usually <model dir>/VisionFile
	Threads int    // TFLite CPU threads; <= 0: TFLite's default
	// Delegate is an external delegate library (plugin ABI); empty runs
	// TFLite's own int8 CPU kernels.
	Delegate        string
	DelegateOptions map[string]string
	// MinCosine overrides DefaultMinCosine for the auto self-check.
	MinCosine float64
	// CheckFrames are the auto self-check's frames at the model size; nil
	// uses two generated test patterns.
	CheckFrames []palirt.Image
}

// cpuBackend is palid's own ViT on the neon kernels.
type cpuBackend struct{ m *palirt.Model }

// NewCPU is the CPU backend over m. Its Close does not close m.
func NewCPU(m *palirt.Model) VisionBackend { return cpuBackend{m} }

func (c cpuBackend) EncodeImage(ctx context.Context, img palirt.Image) ([]float32, error) {
	return c.m.EncodeImage(ctx, img)
}
func (c cpuBackend) Name() string { return BackendCPU }
func (c cpuBackend) Close() error { return nil }

// TFLite runs the exported vision tower in TFLite, through an external
// delegate when configured. It is safe for concurrent use (calls are
// serialized).
type TFLite struct {
	mu      sync.Mutex
	lib     *Library
	model   *Model
	it      *Interpreter
	dlg     *ExternalDelegate
	in, out *Tensor
	size    int
	tokens  int
	dim     int
	name    string
}

// NewTFLite loads cfg.Library, the model cfg.Model and the delegate, and
// checks that the model has the shape palid exports: one input [1, S, S, 3]
// and one output [tokens, width].
func NewTFLite(cfg Config) (*TFLite, error) {
	if cfg.Model == "" {
		return nil, errors.New("tflite backend: no vision model configured")
	}
	lib, err := Open(cfg.Library)
	if err != nil {
		return nil, err
	}
	b := &TFLite{lib: lib, name: BackendTFLite}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	if b.model, err = lib.LoadModel(cfg.Model); err != nil {
		return nil, err
	}
	var opts InterpreterOptions
	opts.Threads = cfg.Threads
	if cfg.Delegate != "" {
		if b.dlg, err = LoadDelegate(cfg.Delegate, cfg.DelegateOptions); err != nil {
			return nil, err
		}
		opts.Delegates = []*ExternalDelegate{b.dlg}
		b.name = BackendTFLite + "+" + filepath.Base(cfg.Delegate)
	}
	if b.it, err = lib.NewInterpreter(b.model, opts); err != nil {
		return nil, err
	}
	if len(b.it.Inputs()) != 1 || len(b.it.Outputs()) != 1 {
		return nil, fmt.Errorf("tflite backend: %s has %d inputs and %d outputs, want one of each (palid export-tflite)",
			cfg.Model, len(b.it.Inputs()), len(b.it.Outputs()))
	}
	b.in, b.out = b.it.Inputs()[0], b.it.Outputs()[0]
	is, os := b.in.Shape(), b.out.Shape()
	if len(is) != 4 || is[0] != 1 || is[1] != is[2] || is[3] != 3 || is[1] <= 0 {
		return nil, fmt.Errorf("tflite backend: %s takes %v, want [1 S S 3]", cfg.Model, is)
	}
	if len(os) != 2 || os[0] <= 0 || os[1] <= 0 {
		return nil, fmt.Errorf("tflite backend: %s gives %v, want [tokens width]", cfg.Model, os)
	}
	for _, t := range []*Tensor{b.in, b.out} {
		switch t.Type() {
		case Float32, Int8, Uint8:
		default:
			return nil, fmt.Errorf("tflite backend: %s tensor %s is %v, want float32, int8 or uint8", cfg.Model, t.Name(), t.Type())
		}
	}
	b.size, b.tokens, b.dim = is[1], os[0], os[1]
	ok = true
	return b, nil
}

// ImageSize is the frame side the model takes.
func (b *TFLite) ImageSize() int { return b.size }

// Name is "tflite" or "tflite+<delegate library file>".
func (b *TFLite) Name() string { return b.name }

// EncodeImage runs the tower on one frame (ImageSize square, CHW in
// [-1, 1]) and returns tokens x width values.
func (b *TFLite) EncodeImage(ctx context.Context, img palirt.Image) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x, err := frameHWC(img, b.size)
	if err != nil {
		return nil, fmt.Errorf("tflite backend: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.it == nil {
		return nil, errors.New("tflite backend: closed")
	}
	if err := b.in.SetReal(x); err != nil {
		return nil, err
	}
	if err := b.it.Invoke(); err != nil {
		return nil, err
	}
	return b.out.Real()
}

// Close frees the interpreter, the delegate and the model.
func (b *TFLite) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.it != nil {
		b.it.Close()
		b.it = nil
	}
	if b.dlg != nil {
		b.dlg.Close()
		b.dlg = nil
	}
	if b.model != nil {
		b.model.Close()
		b.model = nil
	}
	return nil
}

// Select builds the configured backend. "cpu" is the model's own ViT;
// "tflite" must load (an error otherwise); "auto" uses TFLite when it loads
// and agrees with the CPU path on the check frames (mean token cosine at
// least MinCosine), and otherwise falls back to the CPU, logging why.
func Select(ctx context.Context, cfg Config, cpu *palirt.Model, log *slog.Logger) (VisionBackend, error) {
	if log == nil {
		log = slog.Default()
	}
	switch cfg.Backend {
	case "", BackendCPU:
		return NewCPU(cpu), nil
	case BackendTFLite:
		b, err := NewTFLite(cfg)
		if err != nil {
			return nil, err
		}
		if err := b.checkShape(cpu); err != nil {
			b.Close()
			return nil, err
		}
		return b, nil
	case BackendAuto:
		b, err := NewTFLite(cfg)
		if err != nil {
			log.Warn("vision backend: using the CPU", "reason", err.Error())
			return NewCPU(cpu), nil
		}
		cos, err := SelfCheck(ctx, b, cpu, cfg.CheckFrames)
		minCos := cfg.MinCosine
		if minCos == 0 {
			minCos = DefaultMinCosine
		}
		if err == nil && cos < minCos {
			err = fmt.Errorf("%s agrees with the CPU path at mean token cosine %.4f, below %.4f", b.Name(), cos, minCos)
		}
		if err != nil {
			b.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			log.Warn("vision backend: using the CPU", "reason", err.Error())
			return NewCPU(cpu), nil
		}
		log.Info("vision backend: "+b.Name(), "self_check_cosine", math.Round(cos*1e4)/1e4)
		return b, nil
	}
	return nil, fmt.Errorf("vision backend %q: want cpu, tflite or auto", cfg.Backend)
}

// checkShape makes sure the exported model fits the loaded palid model.
func (b *TFLite) checkShape(m *palirt.Model) error {
	info := m.Info()
	if b.size != info.ImageSize || b.tokens != info.VisionTokens || b.dim != info.TextWidth {
		return fmt.Errorf("tflite backend: the vision model takes %dx%d frames to %d x %d tokens, the palid model %dx%d to %d x %d (export it again from this model)",
			b.size, b.size, b.tokens, b.dim, info.ImageSize, info.ImageSize, info.VisionTokens, info.TextWidth)
	}
	return nil
}

// SelfCheck runs b and the CPU path on frames (nil: two generated test
// patterns at the model size) and returns the mean cosine similarity of
// their visual tokens.
func SelfCheck(ctx context.Context, b *TFLite, cpu *palirt.Model, frames []palirt.Image) (float64, error) {
	if err := b.checkShape(cpu); err != nil {
		return 0, err
	}
	if frames == nil {
		frames = testPatterns(cpu.ImageSize())
	}
	var sum float64
	var n int
	for i, img := range frames {
		want, err := cpu.EncodeImage(ctx, img)
		if err != nil {
			return 0, fmt.Errorf("self-check frame %d on the CPU: %w", i, err)
		}
		got, err := b.EncodeImage(ctx, img)
		if err != nil {
			return 0, fmt.Errorf("self-check frame %d: %w", i, err)
		}
		if len(got) != len(want) {
			return 0, fmt.Errorf("self-check frame %d: %s gave %d values, the CPU %d", i, b.Name(), len(got), len(want))
		}
		for t := 0; t < len(want)/b.dim; t++ {
			sum += cosine(got[t*b.dim:(t+1)*b.dim], want[t*b.dim:(t+1)*b.dim])
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("self-check: no frames")
	}
	return sum / float64(n), nil
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		if aa == bb {
			return 1
		}
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// testPatterns are two deterministic frames with smooth gradients, edges
// and flat regions, in [-1, 1].
func testPatterns(size int) []palirt.Image {
	out := make([]palirt.Image, 2)
	for k := range out {
		pix := make([]float32, 3*size*size)
		for c := 0; c < 3; c++ {
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					fx, fy := float64(x)/float64(size), float64(y)/float64(size)
					v := math.Sin(2*math.Pi*(fx*float64(k+1)+fy*float64(c+1)/2)) * 0.8
					if (x*4/size+y*4/size+k+c)%3 == 0 {
						v = 0.9 - 0.6*float64(c)
					}
					pix[c*size*size+y*size+x] = float32(v)
				}
			}
		}
		out[k] = palirt.Image{Width: size, Height: size, Pix: pix}
	}
	return out
}

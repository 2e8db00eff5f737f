package neon

import (
	"context"
	"math/rand/v2"
	"time"
)

// BenchShape is one matrix multiplication shape: Rows (out features) x
// Tokens x Cols (in features).
type BenchShape struct {
	Name               string
	Rows, Tokens, Cols int
}

// BenchShapes are the shapes of issue 3: a ViT-B/16 layer, a T5-base
// decode step and a 2048-wide decode step.
var BenchShapes = []BenchShape{
	{"vit-attn-proj", 768, 197, 768},
	{"vit-mlp-up", 3072, 197, 768},
	{"vit-mlp-down", 768, 197, 3072},
	{"t5-decode", 768, 1, 768},
	{"t5-decode-ffn", 2048, 1, 768},
	{"decode-2048", 2048, 1, 2048},
}

// KernelResult is one measurement of BenchmarkKernels.
type KernelResult struct {
	Kernel  string  `json:"kernel"` // "matmul" or "copy"
	Type    string  `json:"type"`   // weight type
	Shape   string  `json:"shape"`  // BenchShape.Name
	Rows    int     `json:"rows"`
	Tokens  int     `json:"tokens"`
	Cols    int     `json:"cols"`
	Path    string  `json:"path"` // kernel path: the dispatched one or "generic"
	Cold    bool    `json:"cold"` // weights larger than the caches, rotated
	Runs    int     `json:"runs"`
	NsPerOp float64 `json:"ns_per_op"`
	GFLOPS  float64 `json:"gflops"`
	GBps    float64 `json:"weights_gbps"` // weight bytes read per second
}

// BenchmarkKernels measures MatMul at BenchShapes for every weight type,
// on the dispatched path and, if twin is set, on the Go twin, each for
// about perCase. Decode shapes (one token) run with cold weights: enough
// copies of the matrix to overflow the caches, visited in turn, and a
// plain copy of the same bytes is measured as the bandwidth reference.
// It must not run concurrently with other users of the package's kernels.
func BenchmarkKernels(ctx context.Context, p *Pool, perCase time.Duration, twin bool) ([]KernelResult, error) {
	paths := []*kernelSet{kern}
	if twin && kern != genericKernels {
		paths = append(paths, genericKernels)
	}
	var res []KernelResult
	for _, s := range BenchShapes {
		for _, typ := range []DType{Q8_0, Q4_0, F16, F32} {
			m, x, out := benchOperands(typ, s.Rows, s.Cols, s.Tokens)
			mats := []Matrix{m}
			cold := s.Tokens == 1
			if cold {
				const coldBytes = 256 << 20
				copies := max(2, coldBytes/len(m.Data))
				all := make([]byte, copies*len(m.Data))
				mats = mats[:0]
				for i := 0; i < copies; i++ {
					d := all[i*len(m.Data) : (i+1)*len(m.Data)]
					copy(d, m.Data)
					mats = append(mats, Matrix{Type: typ, Rows: m.Rows, Cols: m.Cols, Data: d})
				}
				dst := make([]byte, len(m.Data))
				r := measure(perCase, func(i int) {
					copy(dst, mats[i%len(mats)].Data)
				})
				res = append(res, result("copy", typ, s, "memmove", cold, r, 0, len(m.Data)))
			}
			for _, k := range paths {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				r := measure(perCase, func(i int) {
					p.matMulWith(k, out, mats[i%len(mats)], x, s.Tokens)
				})
				res = append(res, result("matmul", typ, s, k.path, cold, r, 2*float64(s.Rows)*float64(s.Cols)*float64(s.Tokens), len(m.Data)))
			}
		}
	}
	return res, nil
}

type measurement struct {
	runs int
	ns   float64
}

// measure runs f (with the run index) until d has passed, at least twice,
// after one untimed warm-up run.
func measure(d time.Duration, f func(i int)) measurement {
	f(0)
	start := time.Now()
	n := 0
	for n < 2 || time.Since(start) < d {
		f(n + 1)
		n++
	}
	return measurement{n, float64(time.Since(start).Nanoseconds()) / float64(n)}
}

func result(kernel string, typ DType, s BenchShape, path string, cold bool, m measurement, flops float64, bytes int) KernelResult {
	return KernelResult{
		Kernel: kernel, Type: typ.String(), Shape: s.Name,
		Rows: s.Rows, Tokens: s.Tokens, Cols: s.Cols, Path: path, Cold: cold,
		Runs: m.runs, NsPerOp: m.ns,
		GFLOPS: flops / m.ns,
		GBps:   float64(bytes) / m.ns,
	}
}

// benchOperands returns a random weight matrix of type typ, activations
// and an output buffer.
func benchOperands(typ DType, rows, cols, tokens int) (Matrix, []float32, []float32) {
	r := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	data := make([]byte, rows*RowBytes(typ, cols))
	Quantize(typ, data, w)
	x := make([]float32, tokens*cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return Matrix{Type: typ, Rows: rows, Cols: cols, Data: data}, x, make([]float32, tokens*rows)
}

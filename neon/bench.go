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
	// CopyRatio is, for cold matmul results, GBps over that of a plain
	// copy of the same bytes on one thread measured in alternation;
	// ParallelCopyRatio the same against a copy split over the pool.
	CopyRatio         float64 `json:"copy_ratio,omitempty"`
	ParallelCopyRatio float64 `json:"parallel_copy_ratio,omitempty"`
}

// BenchmarkKernels measures MatMul at BenchShapes for every weight type,
// on every assembly path this CPU runs (the dispatched one first) and, if
// twin is set, on the Go twin, each for
// about perCase. Decode shapes (one token) run with cold weights: enough
// copies of the matrix to overflow the caches, visited in turn, and a
// plain copy of the same bytes (on one thread and split over the pool)
// is measured in alternation with them as the bandwidth reference.
// Quantized weights are packed (see Pack); their GB/s count the packed
// bytes.
// It must not run concurrently with other users of the package's kernels.
func BenchmarkKernels(ctx context.Context, p *Pool, perCase time.Duration, twin bool) ([]KernelResult, error) {
	return BenchmarkShapes(ctx, p, perCase, twin, BenchShapes)
}

// BenchmarkShapes is BenchmarkKernels on the given shapes.
func BenchmarkShapes(ctx context.Context, p *Pool, perCase time.Duration, twin bool, shapes []BenchShape) ([]KernelResult, error) {
	// Every path this CPU runs, best first, the Go twin last if asked.
	var paths []*kernelSet
	all := kernelPaths()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i] != genericKernels || twin {
			paths = append(paths, all[i])
		}
	}
	var res []KernelResult
	for _, s := range shapes {
		for _, typ := range []DType{Q8_0, Q4_0, F16, F32} {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			m, x, out := benchOperands(typ, s.Rows, s.Cols, s.Tokens)
			flops := 2 * float64(s.Rows) * float64(s.Cols) * float64(s.Tokens)
			wbytes := weightBytes(m)
			if s.Tokens > 1 {
				for _, k := range paths {
					r := measure(perCase, func(int) { p.matMulWith(k, out, m, x, s.Tokens) })
					res = append(res, result("matmul", typ, s, k.path, false, r, flops, wbytes))
				}
				continue
			}
			// Decode: cold weights, copies visited in turn, measured in
			// alternation with a plain copy of the same bytes on one
			// thread and split over the pool, so that all see the same
			// machine load.
			mats := coldCopies(m, 256<<20)
			dst := make([]byte, wbytes)
			fns := []func(i int){
				func(i int) { copy(dst, weightData(mats[i%len(mats)])) },
				func(i int) {
					src := weightData(mats[i%len(mats)])
					p.Run(p.Threads(), func(lo, hi int) {
						a, b := lo*len(src)/p.Threads(), hi*len(src)/p.Threads()
						copy(dst[a:b], src[a:b])
					})
				},
			}
			for _, k := range paths {
				fns = append(fns, func(i int) { p.matMulWith(k, out, mats[i%len(mats)], x, 1) })
			}
			ms := measureAlternating(perCase*time.Duration(len(fns)), fns)
			c1 := result("copy", typ, s, "memmove", true, ms[0], 0, wbytes)
			cp := result("copy", typ, s, "memmove-parallel", true, ms[1], 0, wbytes)
			res = append(res, c1, cp)
			for i, k := range paths {
				r := result("matmul", typ, s, k.path, true, ms[2+i], flops, wbytes)
				r.CopyRatio = r.GBps / c1.GBps
				r.ParallelCopyRatio = r.GBps / cp.GBps
				res = append(res, r)
			}
		}
	}
	return res, nil
}

// weightData returns the bytes MatMul reads for m.
func weightData(m Matrix) []byte {
	if m.packed != nil {
		return m.packed.data
	}
	return m.Data
}

func weightBytes(m Matrix) int { return len(weightData(m)) }

// coldCopies returns copies of m whose weight data add up to at least
// total bytes (far more than the last-level cache).
func coldCopies(m Matrix, total int) []Matrix {
	src := weightData(m)
	n := max(2, total/len(src))
	all := make([]byte, n*len(src))
	mats := make([]Matrix, n)
	for i := range mats {
		d := all[i*len(src) : (i+1)*len(src)]
		copy(d, src)
		mats[i] = m
		if m.packed != nil {
			pw := *m.packed
			pw.data = d
			mats[i].packed = &pw
		} else {
			mats[i].Data = d
		}
	}
	return mats
}

// measureAlternating runs the functions in rounds, one call of each per
// round, until d has passed (at least two rounds after an untimed one),
// and returns each one's time per call.
func measureAlternating(d time.Duration, fns []func(i int)) []measurement {
	for _, f := range fns {
		f(0)
	}
	ns := make([]time.Duration, len(fns))
	start := time.Now()
	n := 0
	for n < 2 || time.Since(start) < d {
		for j, f := range fns {
			t := time.Now()
			f(n + 1)
			ns[j] += time.Since(t)
		}
		n++
	}
	ms := make([]measurement, len(fns))
	for j := range ms {
		ms[j] = measurement{n, float64(ns[j].Nanoseconds()) / float64(n)}
	}
	return ms
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

// benchOperands returns a random weight matrix of type typ (packed, see
// Pack), activations
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
	return Pack(Matrix{Type: typ, Rows: rows, Cols: cols, Data: data}), x, make([]float32, tokens*rows)
}

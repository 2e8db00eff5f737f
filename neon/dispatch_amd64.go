//go:build !purego

package neon

import (
	"golang.org/x/sys/cpu"
)

//go:noescape
func dotQ8AVX2(w, x *byte, nb int) float32

//go:noescape
func dotQ8x2AVX2(out *[4]float32, w0, w1, x0, x1 *byte, nb int)

//go:noescape
func dotQ4Q8AVX2(w, x *byte, nb int) float32

//go:noescape
func dotQ4Q8x2AVX2(out *[4]float32, w0, w1, x0, x1 *byte, nb int)

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

//go:noescape
func axpyAVX2(y *float32, a float32, x *float32, n int)

var avx2Kernels = &kernelSet{
	path: "avx2",
	dotQ8: func(w, x []byte) float32 {
		nb := len(x) / q8Bytes
		if nb == 0 {
			return 0
		}
		_, _ = w[nb*q8Bytes-1], x[nb*q8Bytes-1]
		return dotQ8AVX2(&w[0], &x[0], nb)
	},
	dotQ8x2: func(out *[4]float32, w0, w1, x0, x1 []byte) {
		nb := len(x0) / q8Bytes
		if nb == 0 {
			*out = [4]float32{}
			return
		}
		n := nb*q8Bytes - 1
		_, _, _, _ = w0[n], w1[n], x0[n], x1[n]
		dotQ8x2AVX2(out, &w0[0], &w1[0], &x0[0], &x1[0], nb)
	},
	dotQ4Q8: func(w, x []byte) float32 {
		nb := len(x) / q8Bytes
		if nb == 0 {
			return 0
		}
		_, _ = w[nb*q4Bytes-1], x[nb*q8Bytes-1]
		return dotQ4Q8AVX2(&w[0], &x[0], nb)
	},
	dotQ4Q8x2: func(out *[4]float32, w0, w1, x0, x1 []byte) {
		nb := len(x0) / q8Bytes
		if nb == 0 {
			*out = [4]float32{}
			return
		}
		nw, nx := nb*q4Bytes-1, nb*q8Bytes-1
		_, _, _, _ = w0[nw], w1[nw], x0[nx], x1[nx]
		dotQ4Q8x2AVX2(out, &w0[0], &w1[0], &x0[0], &x1[0], nb)
	},
	quantQ8: quantizeQ8Generic,
	dotF32: func(a, b []float32) float32 {
		if len(a) == 0 {
			return 0
		}
		_ = b[len(a)-1]
		return dotF32AVX2(&a[0], &b[0], len(a))
	},
	axpy: func(y []float32, a float32, x []float32) {
		if len(y) == 0 {
			return
		}
		_ = x[len(y)-1]
		axpyAVX2(&y[0], a, &x[0], len(y))
	},
	names: []string{"dotQ8AVX2", "dotQ8x2AVX2", "dotQ4Q8AVX2", "dotQ4Q8x2AVX2", "quantizeQ8Generic", "dotF32AVX2", "axpyAVX2"},
}

// hasAVX2 reports whether the AVX2 path can run (AVX2, FMA and F16C).
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

// kernelPaths lists every path this CPU can run, best last.
func kernelPaths() []*kernelSet {
	p := []*kernelSet{genericKernels}
	if hasAVX2 {
		p = append(p, avx2Kernels)
	}
	return p
}

// allPaths names every path of this architecture, runnable or not.
var allPaths = []string{"generic", "avx2"}

func bestKernels() *kernelSet { p := kernelPaths(); return p[len(p)-1] }

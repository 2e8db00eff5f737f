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

//go:noescape
func gemmF32T4x16AVX2(c *float32, ldc int, a *float32, lda int, b *float32, ldb int, k, add int)

//go:noescape
func gemmF32T1x64AVX2(c *float32, a *float32, b *float32, ldb int, k, add int)

//go:noescape
func gemmF16T1x64AVX2(c *float32, a *float32, b *uint16, ldb int, k, add int)

//go:noescape
func gemmF16T1x16AVX2(c *float32, a *float32, b *uint16, ldb int, k, add int)

//go:noescape
func f32ToF16AVX2(dst *uint16, src *float32, n int)

var avx2Kernels = &kernelSet{
	path:    "avx2",
	gemmF32: gemmF32Tiles(gemmF32T4x16AVX2, gemmF32T1x64AVX2, axpyAVX2Slice),
	gemmF16: gemmF16Rows(gemmF16T1x64AVX2, gemmF16T1x16AVX2),
	toF16:   toF16Blocks(f32ToF16AVX2),
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
	quantQ8:   quantizeQ8Generic,
	tileQ8:    tileQ8AVX2,
	tileQ4:    tileQ4AVX2,
	quantAct:  quantizeActAsm,
	f16ToF32:  f16ToF32Asm,
	dotF16:    dotF16Asm,
	gelu:      geluAsm,
	silu:      siluAsm,
	softmax:   softmaxAsm,
	expSum:    expSumAsm,
	layerNorm: avx2Norms.layerNorm,
	rmsNorm:   avx2Norms.rmsNorm,
	dotF32: func(a, b []float32) float32 {
		if len(a) == 0 {
			return 0
		}
		_ = b[len(a)-1]
		return dotF32AVX2(&a[0], &b[0], len(a))
	},
	axpy:  axpyAVX2Slice,
	names: []string{"tileQ8AVX2", "tileQ4AVX2", "quantizeActAVX2", "f16ToF32AVX2", "dotF16AVX2", "geluAVX2", "siluAVX2", "softmaxExpAVX2", "layerNormAVX2", "rmsNormAVX2", "dotQ8AVX2", "dotQ8x2AVX2", "dotQ4Q8AVX2", "dotQ4Q8x2AVX2", "quantizeQ8Generic", "dotF32AVX2", "axpyAVX2", "gemmF32AVX2", "gemmF16AVX2", "f32ToF16AVX2"},
}

func axpyAVX2Slice(y []float32, a float32, x []float32) {
	if len(y) == 0 {
		return
	}
	_ = x[len(y)-1]
	axpyAVX2(&y[0], a, &x[0], len(y))
}

// hasAVX2 reports whether the AVX2 path can run (AVX2, FMA and F16C).
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

// kernelPaths lists every path this CPU can run, best last.
func kernelPaths() []*kernelSet {
	p := []*kernelSet{genericKernels}
	if hasAVX2 {
		p = append(p, avx2Kernels)
		if hasVNNI {
			p = append(p, vnniKernels)
		}
	}
	return p
}

// allPaths names every path of this architecture, runnable or not.
var allPaths = []string{"generic", "avx2", "avx512vnni"}

func bestKernels() *kernelSet { p := kernelPaths(); return p[len(p)-1] }

//go:noescape
func tileQ8T4AVX2(out *float32, ostride int, w, x *byte, xstride int, d *float32, dstride, nb, add int)

//go:noescape
func tileQ8T1AVX2(out *float32, w, x *byte, d *float32, nb, add int)

//go:noescape
func tileQ4T4AVX2(out *float32, ostride int, w, x *byte, xstride int, d *float32, s *int32, dstride, nb, add int)

//go:noescape
func tileQ4T1AVX2(out *float32, w, x *byte, d *float32, s *int32, nb, add int)

var (
	tileQ8AVX2 = tileQ8Asm(tileQ8T4AVX2, tileQ8T1AVX2)
	tileQ4AVX2 = tileQ4Asm(tileQ4T4AVX2, tileQ4T1AVX2, false)
)

//go:noescape
func quantizeActAVX2(qs *byte, ds *float32, sums *int32, src *float32, nb int)

func quantizeActAsm(qs []byte, ds []float32, sums []int32, src []float32) {
	nb := len(src) / qk
	if nb == 0 {
		return
	}
	_, _, _ = qs[nb*qk-1], ds[nb-1], sums[nb-1]
	quantizeActAVX2(&qs[0], &ds[0], &sums[0], &src[0], nb)
}

//go:noescape
func tileQ8T4VNNI(out *float32, ostride int, w, x *byte, xstride int, d *float32, s *int32, dstride, nb, add int)

// hasVNNI reports whether the AVX512-VNNI tile kernels can run (they use
// 256-bit registers only, so no AVX-512 frequency licence is taken).
var hasVNNI = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI

// vnniKernels is the AVX2 path with the Q8_0 4-token tile on VPDPBUSD
// (1.8x the AVX2 tile here). The 1-token (decode) tiles stay AVX2, which
// is bandwidth-bound anyway, and so does Q4_0 (faster on AVX2, see
// gemm_vnni_amd64.s).
var vnniKernels = func() *kernelSet {
	k := *avx2Kernels
	k.path = "avx512vnni"
	k.tileQ8 = tileSumsAsm(packQ8Bytes, tileQ8Generic, tileQ8T4VNNI,
		func(out *float32, w, x *byte, d *float32, _ *int32, nb, add int) { tileQ8T1AVX2(out, w, x, d, nb, add) }, false)
	k.names = append([]string{"tileQ8VNNI"}, avx2Kernels.names[1:]...)
	return &k
}()

//go:noescape
func f16ToF32AVX2(dst *float32, src *byte, n int)

func f16ToF32Asm(dst []float32, src []byte) {
	n := len(dst) &^ 15
	if n > 0 {
		_ = src[2*n-1]
		f16ToF32AVX2(&dst[0], &src[0], n)
	}
	f16ToF32Generic(dst[n:], src[2*n:])
}

//go:noescape
func geluAVX2(x *float32, n int)

//go:noescape
func siluAVX2(x *float32, n int)

//go:noescape
func softmaxExpAVX2(x *float32, n int, m float32) float32

func geluAsm(x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		geluAVX2(&x[0], n)
	}
	geluTanhGeneric(x[n:])
}

func siluAsm(x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		siluAVX2(&x[0], n)
	}
	siluGeneric(x[n:])
}

func softmaxAsm(x []float32) { softmaxWith(x, expSumAsm) }

func expSumAsm(x []float32, m float32) float32 {
	n := len(x) &^ 7
	var sum float32
	if n > 0 {
		sum = softmaxExpAVX2(&x[0], n, m)
	}
	return sum + softmaxExpGeneric(x[n:], m)
}

//go:noescape
func sumF64AVX2(x *float32, n int) float64

//go:noescape
func sumSqDevF64AVX2(x *float32, n int, mean float64) float64

//go:noescape
func layerNormApplyAVX2(dst, x, w, b *float32, n int, m, inv float32)

//go:noescape
func rmsNormApplyAVX2(dst, x, w *float32, n int, inv float32)

var avx2Norms = asmNorms(sumF64AVX2, sumSqDevF64AVX2, layerNormApplyAVX2, rmsNormApplyAVX2, 8)

//go:noescape
func dotF16AVX2(w *byte, x *float32, n int) float32

func dotF16Asm(w []byte, x []float32) float32 {
	n := len(x) &^ 31
	var s float32
	if n > 0 {
		_ = w[2*n-1]
		s = dotF16AVX2(&w[0], &x[0], n)
	}
	return s + dotF16Generic(w[2*n:], x[n:])
}

//go:build !purego

package neon

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run ./internal/asmgen dot_arm64.s.in dot_arm64.s

//go:noescape
func dotQ8ASIMD(w, x *byte, nb int) float32

//go:noescape
func dotQ4Q8ASIMD(w, x *byte, nb int) float32

//go:noescape
func dotQ8SDOT(w, x *byte, nb int) float32

//go:noescape
func dotQ4Q8SDOT(w, x *byte, nb int) float32

//go:noescape
func dotQ8x2SDOT(out *[4]float32, w0, w1, x0, x1 *byte, nb int)

//go:noescape
func dotQ4Q8x2SDOT(out *[4]float32, w0, w1, x0, x1 *byte, nb int)

//go:noescape
func dotQ8x2SMMLA(out *[4]float32, w0, w1, x0, x1 *byte, nb int)

//go:noescape
func dotQ4Q8x2SMMLA(out *[4]float32, w0, w1, x0, x1 *byte, nb int)

//go:noescape
func dotF32NEON(a, b *float32, n int) float32

//go:noescape
func axpyNEON(y *float32, a float32, x *float32, n int)

//go:generate go run ./internal/asmgen gemmf32_arm64.s.in gemmf32_arm64.s

//go:noescape
func gemmF32T4x16NEON(c *float32, ldc int, a *float32, lda int, b *float32, ldb int, k, add int)

//go:noescape
func gemmF32T1x64NEON(c *float32, a *float32, b *float32, ldb int, k, add int)

var gemmF32Asm = gemmF32Tiles(gemmF32T4x16NEON, gemmF32T1x64NEON, axpyAsm)

//go:generate go run ./internal/asmgen gemmf16_arm64.s.in gemmf16_arm64.s

//go:noescape
func gemmF16T1x64NEON(c *float32, a *float32, b *uint16, ldb int, k, add int)

//go:noescape
func gemmF16T1x16NEON(c *float32, a *float32, b *uint16, ldb int, k, add int)

//go:noescape
func f32ToF16NEON(dst *uint16, src *float32, n int)

// dot1 wraps a one-row assembly kernel with the bounds checks.
func dot1(k func(w, x *byte, nb int) float32, wBytes int) func(w, x []byte) float32 {
	return func(w, x []byte) float32 {
		nb := len(x) / q8Bytes
		if nb == 0 {
			return 0
		}
		_, _ = w[nb*wBytes-1], x[nb*q8Bytes-1]
		return k(&w[0], &x[0], nb)
	}
}

// dot2 wraps a 2x2 tile assembly kernel with the bounds checks.
func dot2(k func(out *[4]float32, w0, w1, x0, x1 *byte, nb int), wBytes int) func(out *[4]float32, w0, w1, x0, x1 []byte) {
	return func(out *[4]float32, w0, w1, x0, x1 []byte) {
		nb := len(x0) / q8Bytes
		if nb == 0 {
			*out = [4]float32{}
			return
		}
		nw, nx := nb*wBytes-1, nb*q8Bytes-1
		_, _, _, _ = w0[nw], w1[nw], x0[nx], x1[nx]
		k(out, &w0[0], &w1[0], &x0[0], &x1[0], nb)
	}
}

// tile2 builds a 2x2 tile from four one-row dots (the baseline path).
func tile2(dot func(w, x []byte) float32) func(out *[4]float32, w0, w1, x0, x1 []byte) {
	return func(out *[4]float32, w0, w1, x0, x1 []byte) {
		out[0], out[1], out[2], out[3] = dot(w0, x0), dot(w1, x0), dot(w0, x1), dot(w1, x1)
	}
}

func dotF32Asm(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	_ = b[len(a)-1]
	return dotF32NEON(&a[0], &b[0], len(a))
}

func axpyAsm(y []float32, a float32, x []float32) {
	if len(y) == 0 {
		return
	}
	_ = x[len(y)-1]
	axpyNEON(&y[0], a, &x[0], len(y))
}

var asimdKernels = &kernelSet{
	path:      "asimd",
	dotQ8:     dot1(dotQ8ASIMD, q8Bytes),
	dotQ8x2:   tile2(dot1(dotQ8ASIMD, q8Bytes)),
	dotQ4Q8:   dot1(dotQ4Q8ASIMD, q4Bytes),
	dotQ4Q8x2: tile2(dot1(dotQ4Q8ASIMD, q4Bytes)),
	quantQ8:   quantizeQ8Generic,
	tileQ8:    tileQ8ASIMD,
	tileQ4:    tileQ4ASIMD,
	quantAct:  quantizeActAsm,
	f16ToF32:  f16ToF32Asm,
	dotF16:    dotF16Asm,
	gelu:      geluAsm,
	silu:      siluAsm,
	softmax:   softmaxAsm,
	expSum:    expSumAsm,
	layerNorm: neonNorms.layerNorm,
	rmsNorm:   neonNorms.rmsNorm,
	dotF32:    dotF32Asm,
	axpy:      axpyAsm,
	gemmF32:   gemmF32Asm,
	gemmF16:   gemmF16Rows(gemmF16T1x64NEON, gemmF16T1x16NEON),
	toF16:     toF16Blocks(f32ToF16NEON),
	names:     []string{"tileQ8ASIMD", "tileQ4ASIMD", "quantizeActNEON", "dotQ8ASIMD", "dotQ4Q8ASIMD", "quantizeQ8Generic", "f16ToF32NEON", "dotF16NEON", "geluNEON", "siluNEON", "softmaxExpNEON", "layerNormNEON", "rmsNormNEON", "dotF32NEON", "axpyNEON", "gemmF32NEON", "gemmF16NEON", "f32ToF16NEON"},
}

// sdotKernels is the asimd path with the Q8_0 and Q4_0 kernels on SDOT
// (dotprod).
var sdotKernels = func() *kernelSet {
	k := *asimdKernels
	k.path = "sdot"
	k.dotQ8 = dot1(dotQ8SDOT, q8Bytes)
	k.dotQ8x2 = dot2(dotQ8x2SDOT, q8Bytes)
	k.dotQ4Q8 = dot1(dotQ4Q8SDOT, q4Bytes)
	k.dotQ4Q8x2 = dot2(dotQ4Q8x2SDOT, q4Bytes)
	k.tileQ8 = tileQ8SDOT
	k.tileQ4 = tileQ4SDOT
	k.names = []string{"tileQ8SDOT", "tileQ4SDOT", "quantizeActNEON", "dotQ8SDOT", "dotQ8x2SDOT", "dotQ4Q8SDOT", "dotQ4Q8x2SDOT", "quantizeQ8Generic", "f16ToF32NEON", "dotF16NEON", "geluNEON", "siluNEON", "softmaxExpNEON", "layerNormNEON", "rmsNormNEON", "dotF32NEON", "axpyNEON", "gemmF32NEON", "gemmF16NEON", "f32ToF16NEON"}
	return &k
}()

// smmlaKernels is the sdot path with the Q8_0 tile and the row-pair
// kernels on SMMLA (i8mm); Q4_0 stays on the SDOT tile.
var smmlaKernels = func() *kernelSet {
	k := *sdotKernels
	k.path = "smmla"
	k.dotQ8x2 = dot2(dotQ8x2SMMLA, q8Bytes)
	k.dotQ4Q8x2 = dot2(dotQ4Q8x2SMMLA, q4Bytes)
	k.tileQ8 = tileQ8SMMLA
	k.names = []string{"tileQ8SMMLA", "tileQ4SDOT", "quantizeActNEON", "dotQ8SDOT", "dotQ8x2SMMLA", "dotQ4Q8SDOT", "dotQ4Q8x2SMMLA", "quantizeQ8Generic", "f16ToF32NEON", "dotF16NEON", "geluNEON", "siluNEON", "softmaxExpNEON", "layerNormNEON", "rmsNormNEON", "dotF32NEON", "axpyNEON", "gemmF32NEON", "gemmF16NEON", "f32ToF16NEON"}
	return &k
}()

// allPaths names every path of this architecture, runnable or not.
var allPaths = []string{"generic", "asimd", "sdot", "smmla"}

// kernelPaths lists every path this CPU can run, best last. ASIMD is part
// of every arm64 CPU; SDOT needs dotprod (cpu.ARM64.HasASIMDDP), SMMLA
// needs i8mm and is used together with SDOT for single rows.
func kernelPaths() []*kernelSet {
	p := []*kernelSet{genericKernels, asimdKernels}
	if cpu.ARM64.HasASIMDDP {
		p = append(p, sdotKernels)
		if cpu.ARM64.HasI8MM {
			p = append(p, smmlaKernels)
		}
	}
	return p
}

func bestKernels() *kernelSet { p := kernelPaths(); return p[len(p)-1] }

//go:generate go run ./internal/asmgen gemm_arm64.s.in gemm_arm64.s

//go:noescape
func tileQ8T4SDOT(out *float32, ostride int, w, x *byte, xstride int, d *float32, dstride, nb, add int)

//go:noescape
func tileQ8T1SDOT(out *float32, w, x *byte, d *float32, nb, add int)

//go:noescape
func tileQ4T4SDOT(out *float32, ostride int, w, x *byte, xstride int, d *float32, s *int32, dstride, nb, add int)

//go:noescape
func tileQ4T1SDOT(out *float32, w, x *byte, d *float32, s *int32, nb, add int)

var (
	tileQ8SDOT = tileQ8Asm(tileQ8T4SDOT, tileQ8T1SDOT)
	tileQ4SDOT = tileQ4Asm(tileQ4T4SDOT, tileQ4T1SDOT, true)
)

//go:generate go run ./internal/asmgen f16_arm64.s.in f16_arm64.s

//go:noescape
func f16ToF32NEON(dst *float32, src *byte, n int)

func f16ToF32Asm(dst []float32, src []byte) {
	n := len(dst) &^ 7
	if n > 0 {
		_ = src[2*n-1]
		f16ToF32NEON(&dst[0], &src[0], n)
	}
	f16ToF32Generic(dst[n:], src[2*n:])
}

//go:generate go run ./internal/asmgen quant_arm64.s.in quant_arm64.s

//go:noescape
func quantizeActNEON(qs *byte, ds *float32, sums *int32, src *float32, nb int)

func quantizeActAsm(qs []byte, ds []float32, sums []int32, src []float32) {
	nb := len(src) / qk
	if nb == 0 {
		return
	}
	_, _, _ = qs[nb*qk-1], ds[nb-1], sums[nb-1]
	quantizeActNEON(&qs[0], &ds[0], &sums[0], &src[0], nb)
}

//go:generate go run ./internal/asmgen elementwise_arm64.s.in elementwise_arm64.s

//go:noescape
func geluNEON(x *float32, n int)

//go:noescape
func siluNEON(x *float32, n int)

//go:noescape
func softmaxExpNEON(x *float32, n int, m float32) float32

func geluAsm(x []float32) {
	n := len(x) &^ 3
	if n > 0 {
		geluNEON(&x[0], n)
	}
	geluTanhGeneric(x[n:])
}

func siluAsm(x []float32) {
	n := len(x) &^ 3
	if n > 0 {
		siluNEON(&x[0], n)
	}
	siluGeneric(x[n:])
}

func softmaxAsm(x []float32) { softmaxWith(x, expSumAsm) }

func expSumAsm(x []float32, m float32) float32 {
	n := len(x) &^ 3
	var sum float32
	if n > 0 {
		sum = softmaxExpNEON(&x[0], n, m)
	}
	return sum + softmaxExpGeneric(x[n:], m)
}

//go:generate go run ./internal/asmgen gemm_asimd_arm64.s.in gemm_asimd_arm64.s

//go:noescape
func tileQ8T2ASIMD(out *float32, ostride int, w, x *byte, xstride int, d *float32, dstride, nb, add int)

//go:noescape
func tileQ8T1ASIMD(out *float32, w, x *byte, d *float32, nb, add int)

//go:noescape
func tileQ4T2ASIMD(out *float32, ostride int, w, x *byte, xstride int, d *float32, s *int32, dstride, nb, add int)

//go:noescape
func tileQ4T1ASIMD(out *float32, w, x *byte, d *float32, s *int32, nb, add int)

// The ASIMD kernels do 2 tokens at a time (the register file holds no
// more); a 4-token tile is two of them.
var (
	tileQ8ASIMD = tileQ8Asm(func(out *float32, ostride int, w, x *byte, xstride int, d *float32, dstride, nb, add int) {
		tileQ8T2ASIMD(out, ostride, w, x, xstride, d, dstride, nb, add)
		tileQ8T2ASIMD((*float32)(unsafe.Add(unsafe.Pointer(out), 8*ostride)), ostride, w,
			(*byte)(unsafe.Add(unsafe.Pointer(x), 2*xstride)), xstride,
			(*float32)(unsafe.Add(unsafe.Pointer(d), 8*dstride)), dstride, nb, add)
	}, tileQ8T1ASIMD)
	tileQ4ASIMD = tileQ4Asm(func(out *float32, ostride int, w, x *byte, xstride int, d *float32, s *int32, dstride, nb, add int) {
		tileQ4T2ASIMD(out, ostride, w, x, xstride, d, s, dstride, nb, add)
		tileQ4T2ASIMD((*float32)(unsafe.Add(unsafe.Pointer(out), 8*ostride)), ostride, w,
			(*byte)(unsafe.Add(unsafe.Pointer(x), 2*xstride)), xstride,
			(*float32)(unsafe.Add(unsafe.Pointer(d), 8*dstride)), s, dstride, nb, add)
	}, tileQ4T1ASIMD, false)
)

//go:generate go run ./internal/asmgen gemm_smmla_arm64.s.in gemm_smmla_arm64.s

//go:noescape
func tileQ8T4SMMLA(out *float32, ostride int, w, x *byte, xstride int, d *float32, dstride, nb, add int)

// The SMMLA path: Q8_0 4-token tiles on SMMLA, 1-token tiles (decode,
// tails) on SDOT. Q4_0 stays on the SDOT tiles: with the nibble unpacking
// and the ZIPs, an SMMLA Q4_0 tile was slower in llvm-mca's Neoverse V1
// model (32.6 against 28.1 cycles per block; Q8_0: 22.6 against 22.1).
var tileQ8SMMLA = tileQ8Asm(tileQ8T4SMMLA, tileQ8T1SDOT)

//go:generate go run ./internal/asmgen norm_arm64.s.in norm_arm64.s

//go:noescape
func sumF64NEON(x *float32, n int) float64

//go:noescape
func sumSqDevF64NEON(x *float32, n int, mean float64) float64

//go:noescape
func layerNormApplyNEON(dst, x, w, b *float32, n int, m, inv float32)

//go:noescape
func rmsNormApplyNEON(dst, x, w *float32, n int, inv float32)

var neonNorms = asmNorms(sumF64NEON, sumSqDevF64NEON, layerNormApplyNEON, rmsNormApplyNEON, 4)

//go:noescape
func dotF16NEON(w *byte, x *float32, n int) float32

func dotF16Asm(w []byte, x []float32) float32 {
	n := len(x) &^ 15
	var s float32
	if n > 0 {
		_ = w[2*n-1]
		s = dotF16NEON(&w[0], &x[0], n)
	}
	return s + dotF16Generic(w[2*n:], x[n:])
}

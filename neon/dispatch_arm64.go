//go:build !purego

package neon

import "golang.org/x/sys/cpu"

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
	dotF32:    dotF32Asm,
	axpy:      axpyAsm,
	names:     []string{"dotQ8ASIMD", "dotQ4Q8ASIMD", "quantizeQ8Generic", "dotF32NEON", "axpyNEON"},
}

var sdotKernels = &kernelSet{
	path:      "sdot",
	dotQ8:     dot1(dotQ8SDOT, q8Bytes),
	dotQ8x2:   dot2(dotQ8x2SDOT, q8Bytes),
	dotQ4Q8:   dot1(dotQ4Q8SDOT, q4Bytes),
	dotQ4Q8x2: dot2(dotQ4Q8x2SDOT, q4Bytes),
	quantQ8:   quantizeQ8Generic,
	dotF32:    dotF32Asm,
	axpy:      axpyAsm,
	names:     []string{"dotQ8SDOT", "dotQ8x2SDOT", "dotQ4Q8SDOT", "dotQ4Q8x2SDOT", "quantizeQ8Generic", "dotF32NEON", "axpyNEON"},
}

var smmlaKernels = &kernelSet{
	path:      "smmla",
	dotQ8:     dot1(dotQ8SDOT, q8Bytes),
	dotQ8x2:   dot2(dotQ8x2SMMLA, q8Bytes),
	dotQ4Q8:   dot1(dotQ4Q8SDOT, q4Bytes),
	dotQ4Q8x2: dot2(dotQ4Q8x2SMMLA, q4Bytes),
	quantQ8:   quantizeQ8Generic,
	dotF32:    dotF32Asm,
	axpy:      axpyAsm,
	names:     []string{"dotQ8SDOT", "dotQ8x2SMMLA", "dotQ4Q8SDOT", "dotQ4Q8x2SMMLA", "quantizeQ8Generic", "dotF32NEON", "axpyNEON"},
}

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

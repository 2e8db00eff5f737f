package neon

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// forEachPath runs f on every kernel path of this architecture; a path the
// CPU cannot run is skipped with a message (never silently).
func forEachPath(t *testing.T, f func(t *testing.T, k *kernelSet)) {
	for _, name := range allPaths {
		t.Run(name, func(t *testing.T) {
			for _, k := range kernelPaths() {
				if k.path == name {
					f(t, k)
					return
				}
			}
			t.Skipf("this CPU lacks the features of the %s path", name)
		})
	}
}

func TestDispatchChoosesBest(t *testing.T) {
	p := kernelPaths()
	if kern != p[len(p)-1] {
		t.Fatalf("dispatched %s, best runnable is %s", kern.path, p[len(p)-1].path)
	}
	if len(Kernels()) == 0 || KernelPath() != kern.path {
		t.Fatalf("Kernels() = %v, KernelPath() = %q", Kernels(), KernelPath())
	}
	t.Logf("dispatched path %s: %v", KernelPath(), Kernels())
}

// q8Case is a pair of operands for the quantized dot kernels.
type q8Case struct {
	name string
	w, x []float32 // quantized to w's type and Q8_0
	wq   func(b []byte)
	xq   func(b []byte)
}

// fill sets every quant of a Q8_0 row to v with scale d.
func fillQ8(b []byte, v int8, d float32) {
	for i := 0; i < len(b); i += q8Bytes {
		h := F32ToF16(d)
		b[i], b[i+1] = byte(h), byte(h>>8)
		for j := 0; j < qk; j++ {
			b[i+2+j] = byte(v)
		}
	}
}

func fillQ4(b []byte, nib byte, d float32) {
	for i := 0; i < len(b); i += q4Bytes {
		h := F32ToF16(d)
		b[i], b[i+1] = byte(h), byte(h>>8)
		for j := 0; j < qk/2; j++ {
			b[i+2+j] = nib | nib<<4
		}
	}
}

func randQ8(r *rand.Rand, b []byte, lo, hi int) {
	for i := 0; i < len(b); i += q8Bytes {
		h := F32ToF16(float32(r.ExpFloat64() * 0.01))
		b[i], b[i+1] = byte(h), byte(h>>8)
		for j := 0; j < qk; j++ {
			b[i+2+j] = byte(int8(lo + r.IntN(hi-lo+1)))
		}
	}
}

// checkDots compares a path's dot kernels with the twins on one operand
// pair; the operands sit at an odd offset to test unaligned loads.
func checkDots(t *testing.T, k *kernelSet, typ DType, w0, w1, x0, x1 []byte) {
	t.Helper()
	gen, gen2 := dotQ8Generic, dotQ8x2Generic
	dot, dot2 := k.dotQ8, k.dotQ8x2
	if typ == Q4_0 {
		gen, gen2 = dotQ4Q8Generic, dotQ4Q8x2Generic
		dot, dot2 = k.dotQ4Q8, k.dotQ4Q8x2
	}
	tol := func(want float32, w, x []byte) float64 {
		// float32 summation order differs: bound by the sum of |block|.
		var mag float64
		nb := len(x) / q8Bytes
		for b := 0; b < nb; b++ {
			mag += math.Abs(float64(f16(w[b*typ.BlockBytes():]) * f16(x[b*q8Bytes:]) * 32 * 128 * 128))
		}
		return 1e-6*mag + 1e-6*math.Abs(float64(want))
	}
	got, want := dot(w0, x0), gen(w0, x0)
	if math.Abs(float64(got-want)) > tol(want, w0, x0) {
		t.Fatalf("%s dot = %g, twin %g", typ, got, want)
	}
	var g2, w2 [4]float32
	dot2(&g2, w0, w1, x0, x1)
	gen2(&w2, w0, w1, x0, x1)
	ws := [][]byte{w0, w1, w0, w1}
	xs := [][]byte{x0, x0, x1, x1}
	for i := range g2 {
		if math.Abs(float64(g2[i]-w2[i])) > tol(w2[i], ws[i], xs[i]) {
			t.Fatalf("%s 2x2 tile [%d] = %g, twin %g (all %v vs %v)", typ, i, g2[i], w2[i], g2, w2)
		}
	}
}

func TestQuantDotPaths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, typ := range []DType{Q8_0, Q4_0} {
			for _, nb := range []int{0, 1, 2, 3, 5, 8, 24, 25, 96} {
				wn, xn := nb*typ.BlockBytes(), nb*q8Bytes
				buf := make([]byte, 2*wn+2*xn+16)
				// Odd offsets: nothing is aligned.
				w0 := buf[1 : 1+wn]
				w1 := buf[2+wn : 2+2*wn]
				x0 := buf[3+2*wn : 3+2*wn+xn]
				x1 := buf[5+2*wn+xn : 5+2*wn+2*xn]
				cases := []struct {
					name string
					set  func()
				}{
					{"random", func() {
						if typ == Q8_0 {
							randQ8(r, w0, -128, 127)
							randQ8(r, w1, -128, 127)
						} else {
							for i := range w0 {
								w0[i], w1[i] = byte(r.Uint32()), byte(r.Uint32())
							}
						}
						randQ8(r, x0, -127, 127)
						randQ8(r, x1, -127, 127)
					}},
					{"extreme-neg", func() {
						if typ == Q8_0 {
							fillQ8(w0, -128, 1)
							fillQ8(w1, -128, -0.5)
						} else {
							fillQ4(w0, 0, 1)
							fillQ4(w1, 0, 3)
						}
						fillQ8(x0, -127, 2)
						fillQ8(x1, 127, 1)
					}},
					{"extreme-pos", func() {
						if typ == Q8_0 {
							fillQ8(w0, 127, 1)
							fillQ8(w1, -128, 1)
						} else {
							fillQ4(w0, 15, 1)
							fillQ4(w1, 15, -2)
						}
						fillQ8(x0, 127, 1)
						fillQ8(x1, -127, 65504)
					}},
				}
				for _, c := range cases {
					t.Run(fmt.Sprintf("%s/nb=%d/%s", typ, nb, c.name), func(t *testing.T) {
						c.set()
						checkDots(t, k, typ, w0, w1, x0, x1)
					})
				}
			}
		}
		// Exact integer sums where the float result is exact: all -128
		// weights times all -127 activations, unit scales.
		w := make([]byte, 7*q8Bytes)
		x := make([]byte, 7*q8Bytes)
		fillQ8(w, -128, 1)
		fillQ8(x, -127, 1)
		if got := k.dotQ8(w, x); got != 7*32*128*127 {
			t.Fatalf("all -128 x all -127: %g, want %d", got, 7*32*128*127)
		}
	})
}

func TestFloatPaths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, n := range []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 768, 1031} {
			buf := randVec(r, 2*n+3, 1)
			a, b := buf[1:1+n], buf[n+2:2*n+2] // odd offsets
			got, want := k.dotF32(a, b), dotF32Generic(a, b)
			var mag float64
			for i := range a {
				mag += math.Abs(float64(a[i] * b[i]))
			}
			if math.Abs(float64(got-want)) > 1e-6*mag+1e-30 {
				t.Fatalf("n=%d: dotF32 = %g, twin %g", n, got, want)
			}
			y1 := append([]float32(nil), b...)
			y2 := append([]float32(nil), b...)
			k.axpy(y1, -0.75, a)
			axpyGeneric(y2, -0.75, a)
			for i := range y1 {
				// FMA rounds once, the twin twice.
				if math.Abs(float64(y1[i]-y2[i])) > 1e-6*(math.Abs(float64(y2[i]))+math.Abs(float64(a[i]))) {
					t.Fatalf("n=%d: axpy[%d] = %g, twin %g", n, i, y1[i], y2[i])
				}
			}
		}
	})
}

func TestQuantizeQ8Paths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(25, 26))
		for _, nb := range []int{1, 2, 3, 24, 97} {
			x := randVec(r, nb*qk+1, 3)[1:] // unaligned
			x[0] = 1e-30
			if nb > 2 {
				clear(x[qk : 2*qk]) // an all-zero block
			}
			got := make([]byte, nb*q8Bytes+1)[1:]
			want := make([]byte, nb*q8Bytes)
			k.quantQ8(got, x)
			quantizeQ8Generic(want, x)
			if string(got) != string(want) {
				t.Fatalf("nb=%d: quantizeQ8 differs from the twin", nb)
			}
		}
	})
}

// TestExpectedPath checks the dispatched path against NEON_EXPECT_PATH
// when set (make test sets it for each QEMU_CPU), so that a run under
// QEMU_CPU=cortex-a53 really exercises the baseline path and one under
// max the SMMLA path.
func TestExpectedPath(t *testing.T) {
	want := os.Getenv("NEON_EXPECT_PATH")
	if want == "" {
		t.Skip("NEON_EXPECT_PATH not set")
	}
	if KernelPath() != want {
		t.Fatalf("dispatched path %s, want %s", KernelPath(), want)
	}
}

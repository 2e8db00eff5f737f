package neon

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmF32Paths compares each path's GemmF32 with the Go twin on every
// edge case of the 4 x 16 tiling and of the one-row 64-column kernel (m,
// n and k below, at and above tile multiples, k = 0), strides wider than the rows, add on and off, random
// data at several scales and extremes (±1e15, denormal-sized values,
// zeros). Bound: (k+1) float32 roundings of sum |a*b|. Elements of c
// outside the m x n block (the stride's gap) must be left untouched.
func TestGemmF32Paths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(71, 72))
		for _, m := range []int{1, 3, 4, 5, 8, 13, 32} {
			for _, n := range []int{1, 15, 16, 17, 33, 64, 65, 128, 143} {
				for _, kk := range []int{0, 1, 2, 7, 64, 129} {
					for _, add := range []bool{false, true} {
						for _, kind := range []string{"random", "extreme"} {
							gemmF32Case(t, r, k, m, n, kk, add, kind)
						}
					}
				}
			}
		}
	})
}

func gemmF32Case(t *testing.T, r *rand.Rand, k *kernelSet, m, n, kk int, add bool, kind string) {
	t.Helper()
	lda, ldb, ldc := kk+r.IntN(3), n+r.IntN(5), n+1+r.IntN(5)
	val := func() float32 {
		if kind == "extreme" {
			switch r.IntN(6) {
			case 0:
				return 1e15
			case 1:
				return -1e15
			case 2:
				return 1e-20
			case 3:
				return 0
			}
		}
		return float32(r.NormFloat64())
	}
	a := make([]float32, max(0, (m-1)*lda+kk))
	b := make([]float32, max(0, (kk-1)*ldb+n))
	for i := range a {
		a[i] = val()
	}
	for i := range b {
		b[i] = val()
	}
	c0 := make([]float32, (m-1)*ldc+n+3)
	for i := range c0 {
		c0[i] = float32(r.NormFloat64())
	}
	got := append([]float32(nil), c0...)
	want := append([]float32(nil), c0...)
	checkGemmF32(got, ldc, a, lda, b, ldb, m, n, kk)
	k.gemmF32(got, ldc, a, lda, b, ldb, m, n, kk, add)
	gemmF32Generic(want, ldc, a, lda, b, ldb, m, n, kk, add)
	name := fmt.Sprintf("%s m=%d n=%d k=%d add=%v %s", k.path, m, n, kk, add, kind)
	checkGemmResult(t, name, got, want, c0, m, n, ldc, kk, add, func(row, col, p int) float64 {
		return math.Abs(float64(a[row*lda+p]) * float64(b[p*ldb+col]))
	})
}

// checkGemmResult compares a path's product got with the twin's want
// (both started from c0): elements outside the m x n block (row stride
// ldc) unchanged, the others within (k+2) float32 roundings of sum_p
// absProd(row, col, p), plus |c0| with add.
func checkGemmResult(t *testing.T, name string, got, want, c0 []float32, m, n, ldc, kk int, add bool, absProd func(row, col, p int) float64) {
	t.Helper()
	for i := range got {
		row, col := i/ldc, i%ldc
		if row >= m || col >= n {
			if got[i] != c0[i] {
				t.Fatalf("%s: c[%d] outside the product changed: %g -> %g", name, i, c0[i], got[i])
			}
			continue
		}
		var mag float64
		for p := 0; p < kk; p++ {
			mag += absProd(row, col, p)
		}
		if add {
			mag += math.Abs(float64(c0[i]))
		}
		tol := float64(kk+2)*1.2e-7*mag + 1e-37
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > tol || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: c[%d][%d] = %g, twin %g (|diff| %g > %g)", name, row, col, got[i], want[i], d, tol)
		}
	}
}

// TestGemmF32Panics checks that short slices are refused before any
// assembly runs.
func TestGemmF32Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("GemmF32 with a short b did not panic")
		}
	}()
	a := make([]float32, 4*8)
	c := make([]float32, 4*16)
	GemmF32(c, 16, a, 8, make([]float32, 7*16), 16, 4, 16, 8, false)
}

// BenchmarkGemmF32 multiplies at attention's shapes: scores (32 queries x
// 1024 keys x 64) and probabilities times values (32 x 64 x 1024), one
// thread, every path.
func BenchmarkGemmF32(b *testing.B) {
	for _, sh := range [][3]int{{32, 1024, 64}, {32, 64, 1024}, {197, 768, 768}} {
		m, n, kk := sh[0], sh[1], sh[2]
		r := rand.New(rand.NewPCG(1, 2))
		a, bb, c := randVec(r, m*kk, 1), randVec(r, kk*n, 1), make([]float32, m*n)
		for _, k := range kernelPaths() {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, kk, k.path), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					k.gemmF32(c, n, a, kk, bb, n, m, n, kk, false)
				}
				b.ReportMetric(2*float64(m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

package neon

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmF16Paths compares each path's GemmF16 with the Go twin around the
// one-row 64-column kernel (n below, at and above multiples of 64; several
// rows; k = 0), strides wider than the rows, add on and off, and b values
// at several scales and at the half-precision extremes (±65504, the
// smallest subnormal, zeros). Bound: (k+2) float32 roundings of sum
// |a*b|. Elements of c outside the m x n block must be left untouched.
func TestGemmF16Paths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(73, 74))
		for _, m := range []int{1, 2, 4, 5} {
			for _, n := range []int{1, 15, 63, 64, 65, 128, 143, 272} {
				for _, kk := range []int{0, 1, 2, 7, 64, 129} {
					for _, add := range []bool{false, true} {
						for _, kind := range []string{"random", "extreme"} {
							gemmF16Case(t, r, k, m, n, kk, add, kind)
						}
					}
				}
			}
		}
	})
}

func gemmF16Case(t *testing.T, r *rand.Rand, k *kernelSet, m, n, kk int, add bool, kind string) {
	t.Helper()
	lda, ldb, ldc := kk+r.IntN(3), n+r.IntN(5), n+1+r.IntN(5)
	val := func() float32 {
		if kind == "extreme" {
			switch r.IntN(6) {
			case 0:
				return 65504
			case 1:
				return -65504
			case 2:
				return 0x1p-24
			case 3:
				return 0
			}
		}
		return float32(r.NormFloat64())
	}
	a := make([]float32, max(0, (m-1)*lda+kk))
	b := make([]uint16, max(0, (kk-1)*ldb+n))
	for i := range a {
		a[i] = float32(r.NormFloat64())
	}
	for i := range b {
		b[i] = F32ToF16(val())
	}
	c0 := make([]float32, (m-1)*ldc+n+3)
	for i := range c0 {
		c0[i] = float32(r.NormFloat64())
	}
	got := append([]float32(nil), c0...)
	want := append([]float32(nil), c0...)
	checkGemm("GemmF16", len(got), ldc, len(a), lda, len(b), ldb, m, n, kk)
	k.gemmF16(got, ldc, a, lda, b, ldb, m, n, kk, add)
	gemmF16Generic(want, ldc, a, lda, b, ldb, m, n, kk, add)
	name := fmt.Sprintf("%s m=%d n=%d k=%d add=%v %s", k.path, m, n, kk, add, kind)
	checkGemmResult(t, name, got, want, c0, m, n, ldc, kk, add, func(row, col, p int) float64 {
		return math.Abs(float64(a[row*lda+p]) * float64(F16ToF32(b[p*ldb+col])))
	})
}

// TestToF16Paths checks each path's conversion bit for bit against
// F32ToF16 (NaN only as NaN: hardware keeps payload bits) on random values
// at every scale, exact ties between halves, values that round up to the
// next exponent or to infinity, half subnormals and underflow, infinities
// and NaNs; lengths around the 8-value blocks.
func TestToF16Paths(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65519.99, 65520, -65520, 1e10,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26,
		0x1.ffcp-15, 0x1p-14, 0x1.002p0, 0x1.006p0, 2049, 2051, 1e-30, -3e-6, 0x1.ffep15}
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(75, 76))
		for _, n := range []int{0, 1, 7, 8, 9, 16, 31, 200} {
			src := make([]float32, n)
			for i := range src {
				switch r.IntN(3) {
				case 0:
					src[i] = special[r.IntN(len(special))]
				case 1:
					src[i] = float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(60)-40)))
				default:
					src[i] = math.Float32frombits(r.Uint32())
				}
			}
			dst := make([]uint16, n+2)
			dst[n], dst[n+1] = 0xabcd, 0xabcd
			k.toF16(dst[:n], src)
			for i, f := range src {
				want := F32ToF16(f)
				got := dst[i]
				isNaN := func(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }
				if got != want && !(isNaN(got) && isNaN(want)) {
					t.Fatalf("%s n=%d: %g (%#08x) -> %#04x, want %#04x", k.path, n, f, math.Float32bits(f), got, want)
				}
			}
			if dst[n] != 0xabcd || dst[n+1] != 0xabcd {
				t.Fatalf("%s n=%d: wrote past the end", k.path, n)
			}
		}
	})
}

// TestGemmF16Panics checks that short slices are refused before any
// assembly runs.
func TestGemmF16Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("GemmF16 with a short b did not panic")
		}
	}()
	GemmF16(make([]float32, 64), 64, make([]float32, 8), 8, make([]uint16, 7*64), 64, 1, 64, 8, false)
}

// BenchmarkGemmF16 runs a decode step's cross-attention shapes, one query
// against 272 keys of one head: scores (1 x 272 x 64) and probabilities
// times values (1 x 64 x 272), F16 against F32 on every path.
func BenchmarkGemmF16(b *testing.B) {
	for _, sh := range [][3]int{{1, 272, 64}, {1, 64, 272}} {
		m, n, kk := sh[0], sh[1], sh[2]
		r := rand.New(rand.NewPCG(1, 2))
		a, bb, c := randVec(r, m*kk, 1), randVec(r, kk*n, 1), make([]float32, m*n)
		bh := make([]uint16, len(bb))
		toF16Generic(bh, bb)
		for _, k := range kernelPaths() {
			b.Run(fmt.Sprintf("%dx%dx%d/f16/%s", m, n, kk, k.path), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					k.gemmF16(c, n, a, kk, bh, n, m, n, kk, false)
				}
				b.ReportMetric(2*float64(m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			b.Run(fmt.Sprintf("%dx%dx%d/f32/%s", m, n, kk, k.path), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					k.gemmF32(c, n, a, kk, bb, n, m, n, kk, false)
				}
				b.ReportMetric(2*float64(m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

package neon

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// naiveMatMul is the float64 reference: W dequantized, x quantized to
// Q8_0 first for quantized weights (ggml's semantics). It also returns
// sum |w*x| per output, the scale of the rounding error.
func naiveMatMul(m Matrix, x []float32, n int) (want, mag []float64) {
	w := make([]float32, m.Rows*m.Cols)
	Dequantize(m.Type, w, m.Data)
	xs := x
	if m.Type == Q8_0 || m.Type == Q4_0 {
		xs = make([]float32, n*m.Cols)
		for i := 0; i < n*m.Cols; i += 32 {
			b := refQuantQ8(x[i : i+32])
			d := F16ToF32(b.d)
			for j := 0; j < 32; j++ {
				xs[i+j] = float32(b.qs[j]) * d
			}
		}
	}
	want = make([]float64, n*m.Rows)
	mag = make([]float64, n*m.Rows)
	for t := 0; t < n; t++ {
		for r := 0; r < m.Rows; r++ {
			var s, a float64
			for c := 0; c < m.Cols; c++ {
				p := float64(w[r*m.Cols+c]) * float64(xs[t*m.Cols+c])
				s += p
				a += math.Abs(p)
			}
			want[t*m.Rows+r] = s
			mag[t*m.Rows+r] = a
		}
	}
	return want, mag
}

func randMatrix(r *rand.Rand, typ DType, rows, cols int) Matrix {
	w := randVec(r, rows*cols, 0.5)
	data := make([]byte, RowBytes(typ, cols)*rows)
	Quantize(typ, data, w)
	return Matrix{Type: typ, Rows: rows, Cols: cols, Data: data}
}

func checkMatMul(t *testing.T, p *Pool, m Matrix, x []float32, n int) {
	t.Helper()
	out := make([]float32, n*m.Rows+1)
	out[n*m.Rows] = 12345 // must stay untouched
	p.MatMul(out, m, x, n)
	want, mag := naiveMatMul(m, x, n)
	for i := range want {
		if e := math.Abs(float64(out[i]) - want[i]); e > 2e-6*mag[i]+1e-30 {
			t.Fatalf("%s %dx%d, n=%d: out[%d] (token %d row %d) = %g, want %g (error %g, scale %g)",
				m.Type, m.Rows, m.Cols, n, i, i/m.Rows, i%m.Rows, out[i], want[i], e, mag[i])
		}
	}
	if out[n*m.Rows] != 12345 {
		t.Fatal("MatMul wrote past n*Rows")
	}
}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	shapes := []struct{ rows, cols, n int }{
		{1, 32, 1}, {3, 64, 1}, {5, 96, 3}, {67, 160, 1}, {67, 160, 7}, {33, 256, 65}, {64, 64, 130}, {2, 32, 2},
	}
	for _, threads := range []int{1, 3} {
		p := NewPool(threads)
		for _, k := range kernelPaths() {
			restore := useKernels(k)
			for _, typ := range []DType{F32, F16, Q8_0, Q4_0} {
				for _, s := range shapes {
					t.Run(fmt.Sprintf("%s/%s/%dx%dx%d/threads=%d", k.path, typ, s.rows, s.cols, s.n, threads), func(t *testing.T) {
						m := randMatrix(r, typ, s.rows, s.cols)
						x := randVec(r, s.n*s.cols, 1)
						checkMatMul(t, p, m, x, s.n)
					})
				}
			}
			restore()
		}
		p.Close()
	}
}

func TestMatMulNilPoolAndEmpty(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var p *Pool
	m := randMatrix(r, Q8_0, 9, 64)
	checkMatMul(t, p, m, randVec(r, 5*64, 1), 5)
	p.MatMul(nil, m, nil, 0) // no tokens: nothing to do
}

func TestMatMulBadShapesPanic(t *testing.T) {
	m := Matrix{Type: Q8_0, Rows: 2, Cols: 32, Data: make([]byte, 34)} // one row short
	defer func() {
		if recover() == nil {
			t.Fatal("MatMul accepted a short matrix")
		}
	}()
	NewPool(1).MatMul(make([]float32, 2), m, make([]float32, 32), 1)
}

func TestPoolCoversEveryIndexOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := NewPool(threads)
		if p.Threads() != threads {
			t.Fatalf("Threads() = %d, want %d", p.Threads(), threads)
		}
		for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 100, 1001} {
			for _, run := range []func(int, func(int, int)){p.Run, p.RunBalanced} {
				hits := make([]int32, n)
				var mu sync.Mutex
				run(n, func(lo, hi int) {
					if lo >= hi || lo < 0 || hi > n {
						t.Errorf("bad chunk [%d, %d) of %d", lo, hi, n)
						return
					}
					mu.Lock()
					for i := lo; i < hi; i++ {
						hits[i]++
					}
					mu.Unlock()
				})
				for i, h := range hits {
					if h != 1 {
						t.Fatalf("threads=%d n=%d: index %d run %d times", threads, n, i, h)
					}
				}
			}
		}
		p.Close()
	}
}

func TestPoolConcurrentAndNested(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	var wg sync.WaitGroup
	sums := make([]int64, 8)
	for g := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 50; it++ {
				var mu sync.Mutex
				var s int64
				p.Run(10, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						// A nested Run from inside a chunk.
						p.Run(10, func(lo2, hi2 int) {
							var part int64
							for j := lo2; j < hi2; j++ {
								part += int64(i*10 + j)
							}
							mu.Lock()
							s += part
							mu.Unlock()
						})
					}
				})
				sums[g] += s
			}
		}()
	}
	wg.Wait()
	for g, s := range sums {
		if s != 50*4950 {
			t.Fatalf("goroutine %d: sum %d, want %d", g, s, 50*4950)
		}
	}
}

func TestPoolAfterClose(t *testing.T) {
	p := NewPool(4)
	p.Close()
	p.Close()
	n := 0
	p.Run(5, func(lo, hi int) { n += hi - lo })
	if n != 5 {
		t.Fatalf("Run after Close covered %d of 5", n)
	}
}

func TestMatMulConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	p := NewPool(2)
	defer p.Close()
	m := randMatrix(r, Q4_0, 40, 128)
	x := randVec(r, 9*128, 1)
	want := make([]float32, 9*40)
	p.MatMul(want, m, x, 9)
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float32, 9*40)
			p.MatMul(out, m, x, 9)
			for i := range out {
				if out[i] != want[i] {
					t.Errorf("concurrent MatMul differs at %d", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

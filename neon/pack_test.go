package neon

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestPackLayout checks Pack against the layout documented in pack.go by
// unpacking every quant and scale back.
func TestPackLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, typ := range []DType{Q8_0, Q4_0} {
		for _, rows := range []int{1, 7, 8, 9, 17} {
			m := randMatrix(r, typ, rows, 96)
			pm := Pack(m)
			if !pm.Packed() || pm.packed.groups != (rows+7)/8 {
				t.Fatalf("%s %d rows: not packed or wrong group count", typ, rows)
			}
			if &pm.Row(rows - 1)[0] != &m.Row(rows - 1)[0] {
				t.Fatal("Pack changed the unpacked rows")
			}
			if Pack(pm).packed != pm.packed {
				t.Fatal("Pack repacked a packed matrix")
			}
			w := make([]float32, rows*96)
			Dequantize(typ, w, m.Data)
			pw := pm.packed
			for g := 0; g < pw.groups; g++ {
				for b := 0; b < pw.nb; b++ {
					rec := pw.data[(g*pw.nb+b)*pw.rec:]
					for i := 0; i < packRows; i++ {
						row := g*packRows + i
						for c := 0; c < qk; c++ {
							var d float32
							var q int
							if typ == Q8_0 {
								d = math.Float32frombits(uint32(rec[256+4*i]) | uint32(rec[257+4*i])<<8 | uint32(rec[258+4*i])<<16 | uint32(rec[259+4*i])<<24)
								q = int(int8(rec[(c/4)*32+4*i+c%4]))
							} else {
								d = math.Float32frombits(uint32(rec[128+4*i]) | uint32(rec[129+4*i])<<8 | uint32(rec[130+4*i])<<16 | uint32(rec[131+4*i])<<24)
								q = int(rec[(c/8)*32+4*i+c%4]>>(4*((c/4)%2))&0xf) - 8
							}
							got := float32(q) * d
							var want float32
							if row < rows {
								want = w[row*96+b*qk+c]
							}
							if row >= rows && d != 0 {
								t.Fatalf("%s: padding row %d has scale %g", typ, row, d)
							}
							if got != want {
								t.Fatalf("%s %d rows: row %d element %d unpacks to %g, want %g", typ, rows, row, b*qk+c, got, want)
							}
						}
					}
				}
			}
		}
	}
	// Other types are returned as they are.
	m := randMatrix(r, F16, 3, 8)
	if Pack(m).Packed() {
		t.Fatal("Pack packed an F16 matrix")
	}
}

// fillAct sets the activation quants of tokens from q(t, c) with scale
// d(t, b), computing the block sums as quantization does.
func fillAct(a *actQ8, n int, q func(t, c int) int8, d func(t, b int) float32) {
	for t := 0; t < n; t++ {
		for b := 0; b < a.nb; b++ {
			var s int32
			for c := 0; c < qk; c++ {
				v := q(t, b*qk+c)
				a.qs[t*a.k+b*qk+c] = byte(v)
				s += int32(v)
			}
			a.sums[t*a.nb+b] = s
			a.ds[t*a.nb+b] = d(t, b)
		}
	}
	a.setBias(0, n*a.nb)
}

// TestTilePaths compares every path's tile kernels with the Go twins on
// random and extreme operands, every token count 1..4, block offsets,
// and both the overwrite and the accumulate mode.
func TestTilePaths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(41, 42))
		const nb, n = 13, 6
		type wcase struct {
			name string
			q8   func(row, c int) int8
			q4   func(row, c int) byte
			d    func(row, b int) float32
		}
		type xcase struct {
			name string
			q    func(t, c int) int8
			d    func(t, b int) float32
		}
		wcases := []wcase{
			{"random", func(int, int) int8 { return int8(r.IntN(256) - 128) }, func(int, int) byte { return byte(r.IntN(16)) },
				func(int, int) float32 { return float32(r.NormFloat64()) }},
			{"min", func(int, int) int8 { return -128 }, func(int, int) byte { return 0 }, func(int, int) float32 { return 1 }},
			{"max", func(int, int) int8 { return 127 }, func(int, int) byte { return 15 }, func(int, int) float32 { return -2 }},
			{"mixed", func(row, c int) int8 {
				if (row+c)%2 == 0 {
					return -128
				}
				return 127
			}, func(row, c int) byte { return byte(15 * ((row + c) % 2)) }, func(row, b int) float32 { return float32(row+1) * 0.25 }},
		}
		xcases := []xcase{
			{"random", func(int, int) int8 { return int8(r.IntN(255) - 127) }, func(int, int) float32 { return float32(r.ExpFloat64()) }},
			{"-127", func(int, int) int8 { return -127 }, func(int, int) float32 { return 1 }},
			{"127", func(int, int) int8 { return 127 }, func(t, b int) float32 { return float32(t + b) }},
			{"zero-scale", func(int, int) int8 { return 5 }, func(int, int) float32 { return 0 }},
		}
		for _, typ := range []DType{Q8_0, Q4_0} {
			for _, wc := range wcases {
				// Build an unpacked 11-row matrix from the case and pack it.
				const rows = 11
				m := Matrix{Type: typ, Rows: rows, Cols: nb * qk, Data: make([]byte, rows*RowBytes(typ, nb*qk))}
				rb := RowBytes(typ, nb*qk)
				for row := 0; row < rows; row++ {
					for b := 0; b < nb; b++ {
						h := F32ToF16(wc.d(row, b))
						if typ == Q8_0 {
							blk := m.Data[row*rb+b*q8Bytes:]
							blk[0], blk[1] = byte(h), byte(h>>8)
							for c := 0; c < qk; c++ {
								blk[2+c] = byte(wc.q8(row, b*qk+c))
							}
						} else {
							blk := m.Data[row*rb+b*q4Bytes:]
							blk[0], blk[1] = byte(h), byte(h>>8)
							for j := 0; j < qk/2; j++ {
								blk[2+j] = wc.q4(row, b*qk+j) | wc.q4(row, b*qk+j+16)<<4
							}
						}
					}
				}
				pw := Pack(m).packed
				for _, xc := range xcases {
					a := getAct(n, nb*qk)
					fillAct(a, n, xc.q, xc.d)
					gen, tile := tileQ8Generic, k.tileQ8
					if typ == Q4_0 {
						gen, tile = tileQ4Generic, k.tileQ4
					}
					for g := 0; g < pw.groups; g++ {
						for nt := 1; nt <= 4; nt++ {
							for _, bs := range [][2]int{{0, nb}, {0, 1}, {3, 7}, {12, 1}} {
								for _, add := range []bool{false, true} {
									name := fmt.Sprintf("%s/w=%s/x=%s/g=%d/nt=%d/b=%d+%d/add=%v", typ, wc.name, xc.name, g, nt, bs[0], bs[1], add)
									w := pw.data[(g*nb+bs[0])*pw.rec : (g*nb+bs[0]+bs[1])*pw.rec]
									const ostride = 9 // odd: rows of out are unaligned
									got := make([]float32, 4*ostride+1)
									want := make([]float32, 4*ostride+1)
									for i := range got {
										got[i] = float32(i) - 3
										want[i] = got[i]
									}
									tile(got[1:], ostride, w, a, 1, nt, bs[0], bs[1], add)
									gen(want[1:], ostride, w, a, 1, nt, bs[0], bs[1], add)
									// float32 rounding differs (FMA, order): bound by
									// the largest possible block sums.
									var dx float64
									for _, v := range a.ds {
										dx = max(dx, math.Abs(float64(v)))
									}
									bound := float64(bs[1]) * 32 * 128 * 128 * dx * float64(maxAbsScale(pw, g))
									for i := range got {
										tol := 1e-6*bound + 1e-6*math.Abs(float64(want[i]))
										if d := math.Abs(float64(got[i] - want[i])); d > tol || math.IsNaN(float64(got[i])) {
											t.Fatalf("%s: out[%d] = %g, twin %g", name, i, got[i], want[i])
										}
									}
								}
							}
						}
					}
					actPool.Put(a)
				}
			}
		}
	})
}

// maxAbsScale is the largest |row scale| of group g.
func maxAbsScale(pw *packedWeights, g int) float32 {
	off := packRows * qk
	if pw.rec == packQ4Bytes {
		off = packRows * qk / 2
	}
	var m float32
	for b := 0; b < pw.nb; b++ {
		rec := pw.data[(g*pw.nb+b)*pw.rec:]
		for i := 0; i < packRows; i++ {
			v := math.Float32frombits(uint32(rec[off+4*i]) | uint32(rec[off+4*i+1])<<8 | uint32(rec[off+4*i+2])<<16 | uint32(rec[off+4*i+3])<<24)
			m = max(m, abs32(v))
		}
	}
	return m
}

// TestMatMulPacked runs MatMul on packed matrices on every path against
// the float64 reference: odd row counts (partial last group), token
// counts that leave 1-3 tokens after the 4-token tiles, K longer than a
// cache chunk, decode (one token), one and three threads.
func TestMatMulPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	shapes := []struct{ rows, cols, n int }{
		{1, 32, 1}, {3, 64, 1}, {8, 32, 4}, {9, 96, 5}, {67, 160, 1}, {67, 160, 7},
		{33, 256, 65}, {64, 64, 130}, {2, 32, 2}, {24, 32 * (kcBlocks + 3), 6}, {80, 32 * 2 * kcBlocks, 3},
		{13, 32 * (kcBlocks + 5), 9}, // partial last group with two K chunks and a token tail
	}
	for _, threads := range []int{1, 3} {
		p := NewPool(threads)
		forEachPath(t, func(t *testing.T, k *kernelSet) {
			restore := useKernels(k)
			defer restore()
			for _, typ := range []DType{Q8_0, Q4_0} {
				for _, s := range shapes {
					t.Run(fmt.Sprintf("%s/%dx%dx%d/threads=%d", typ, s.rows, s.cols, s.n, threads), func(t *testing.T) {
						m := Pack(randMatrix(r, typ, s.rows, s.cols))
						x := randVec(r, s.n*s.cols, 1)
						checkMatMul(t, p, m, x, s.n)
					})
				}
			}
		})
		p.Close()
	}
}

// TestQuantizeActPaths compares each path's activation quantization with
// quantizeQ8Generic (ggml's reference) on the same inputs as the Q8_0
// quantization tests.
func TestQuantizeActPaths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		for i, x := range quantInputs() {
			nb := len(x) / qk
			ref := make([]byte, nb*q8Bytes)
			quantizeQ8Generic(ref, x)
			qs := make([]byte, len(x)+1)
			ds := make([]float32, nb+1)
			sums := make([]int32, nb+1)
			k.quantAct(qs[1:], ds[1:], sums[1:], x) // unaligned
			for b := 0; b < nb; b++ {
				var s int32
				for c := 0; c < qk; c++ {
					if qs[1+b*qk+c] != ref[b*q8Bytes+2+c] {
						t.Fatalf("input %d: block %d quant %d = %d, want %d", i, b, c, int8(qs[1+b*qk+c]), int8(ref[b*q8Bytes+2+c]))
					}
					s += int32(int8(ref[b*q8Bytes+2+c]))
				}
				if d := f16(ref[b*q8Bytes:]); ds[1+b] != d && !(math.IsNaN(float64(d)) && math.IsNaN(float64(ds[1+b]))) {
					t.Fatalf("input %d: block %d scale %g, want %g", i, b, ds[1+b], d)
				}
				if sums[1+b] != s {
					t.Fatalf("input %d: block %d sum %d, want %d", i, b, sums[1+b], s)
				}
			}
		}
	})
}

// TestF16ToF32Paths converts every half value on every path, at odd
// lengths and unaligned offsets, against F16ToF32 (NaNs must stay NaN;
// hardware may set the quiet bit of a signalling NaN).
func TestF16ToF32Paths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		src := make([]byte, 2*65536+1)
		for h := 0; h < 65536; h++ {
			src[1+2*h], src[2+2*h] = byte(h), byte(h>>8)
		}
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 33, 65536} {
			dst := make([]float32, n+1)
			k.f16ToF32(dst[1:], src[1:1+2*n])
			for i := 0; i < n; i++ {
				want := F16ToF32(uint16(i))
				got := dst[1+i]
				if math.IsNaN(float64(want)) {
					if !math.IsNaN(float64(got)) {
						t.Fatalf("n=%d: %#04x -> %v, want NaN", n, i, got)
					}
					continue
				}
				if math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("n=%d: %#04x -> %v, want %v", n, i, got, want)
				}
			}
		}
	})
}

// TestDotF16Paths compares each path's fused F16 dot product with the
// twin at every length up to 100 (tails of the 32- and 16-wide loops),
// unaligned, and through MatMul at one token with odd row lengths.
func TestDotF16Paths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(81, 82))
		for n := 0; n <= 100; n++ {
			x := randVec(r, n+1, 1)[1:]
			wf := randVec(r, n, 1)
			w := make([]byte, 2*n+1)
			Quantize(F16, w[1:], wf)
			got, want := k.dotF16(w[1:], x), dotF16Generic(w[1:], x)
			var mag float64
			for i := range x {
				mag += math.Abs(float64(wf[i] * x[i]))
			}
			if d := math.Abs(float64(got - want)); d > 1e-6*mag+1e-30 {
				t.Fatalf("n=%d: dotF16 = %g, twin %g", n, got, want)
			}
		}
		restore := useKernels(k)
		defer restore()
		p := NewPool(2)
		defer p.Close()
		for _, cols := range []int{1, 33, 70} {
			m := randMatrix(r, F16, 5, cols)
			checkMatMul(t, p, m, randVec(r, cols, 1), 1)
		}
	})
}

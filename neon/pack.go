package neon

import (
	"encoding/binary"
	"math"
	"sync"
)

// Packed weights.
//
// Pack rearranges a quantized matrix at load time into groups of packRows
// rows whose blocks are interleaved, so that one 32-byte (amd64) or two
// 16-byte (arm64) loads hold 4 consecutive quants of each of 8 rows: the
// int32 lanes of a vector register are then 8 output rows, and one
// conversion and one FMA per block serve a whole 8-row x 1-token tile.
//
// Record of group g, block b (records of a group are consecutive):
//
//	Q8_0 (288 bytes): 8 chunks of 32 bytes, chunk j = for row i = 0..7 the
//	  int8 quants 4j..4j+3 of row 8g+i at byte 4i; then 8 float32 scales.
//	Q4_0 (160 bytes): 4 chunks of 32 bytes, byte 4i+e of chunk k holds the
//	  unsigned nibble (value+8) of element 8k+e of row 8g+i in its low half
//	  and of element 8k+4+e in its high half; then 8 float32 scales.
//
// Rows past the end of the matrix (the last group) are zero with scale 0.
const (
	packRows    = 8
	packQ8Bytes = packRows*qk + packRows*4   // 288
	packQ4Bytes = packRows*qk/2 + packRows*4 // 160
)

// packedWeights is the layout Pack builds.
type packedWeights struct {
	groups int    // ceil(Rows / packRows)
	nb     int    // blocks per row
	rec    int    // bytes per (group, block) record
	data   []byte // groups * nb * rec
}

// Pack returns m with its weights also stored in the interleaved layout
// that the matrix multiplication kernels read fastest, for Q8_0 and Q4_0
// matrices; other types are returned unchanged. MatMul on the returned
// Matrix uses the packed copy; m.Data stays referenced, so Row and
// Dequantize keep working. The packed copy is as large as the original
// plus 2 bytes per block (float32 scales): when m.Data is a file
// mapping its pages can be reclaimed once Pack has read them. Packing is
// done once at load time and costs about one pass over the weights;
// later changes to m.Data do not reach the packed copy. It panics when m
// fails Check (a programming error: check matrices from
// files first).
func Pack(m Matrix) Matrix {
	if err := m.Check(); err != nil {
		panic("neon: Pack: " + err.Error())
	}
	if m.packed != nil || (m.Type != Q8_0 && m.Type != Q4_0) || m.Rows == 0 || m.Cols == 0 {
		return m
	}
	nb := m.Cols / qk
	pw := &packedWeights{groups: (m.Rows + packRows - 1) / packRows, nb: nb, rec: packQ8Bytes}
	if m.Type == Q4_0 {
		pw.rec = packQ4Bytes
	}
	pw.data = make([]byte, pw.groups*nb*pw.rec)
	wrb := RowBytes(m.Type, m.Cols)
	for r := 0; r < m.Rows; r++ {
		g, i := r/packRows, r%packRows
		row := m.Data[r*wrb : (r+1)*wrb]
		for b := 0; b < nb; b++ {
			rec := pw.data[(g*nb+b)*pw.rec : (g*nb+b+1)*pw.rec]
			if m.Type == Q8_0 {
				blk := row[b*q8Bytes : (b+1)*q8Bytes]
				for c := 0; c < qk; c++ {
					rec[(c/4)*32+4*i+c%4] = blk[2+c]
				}
				binary.LittleEndian.PutUint32(rec[packRows*qk+4*i:], math.Float32bits(f16(blk)))
				continue
			}
			blk := row[b*q4Bytes : (b+1)*q4Bytes]
			for c := 0; c < qk; c++ {
				var nib byte
				if c < qk/2 {
					nib = blk[2+c] & 0xf
				} else {
					nib = blk[2+c-qk/2] >> 4
				}
				k, e, hi := c/8, c%4, (c/4)%2
				rec[k*32+4*i+e] |= nib << (4 * hi)
			}
			binary.LittleEndian.PutUint32(rec[packRows*qk/2+4*i:], math.Float32bits(f16(blk)))
		}
	}
	m.packed = pw
	return m
}

// Packed reports whether MatMul on m uses a packed layout (see Pack).
func (m Matrix) Packed() bool { return m.packed != nil }

// actQ8 is a batch of activation rows quantized to Q8_0 (ggml's
// quantize_row_q8_0 values) in the layout of the packed kernels: the
// quants of token t at qs[t*k:], its block scales (f16-rounded, as
// float32) at ds[t*nb:] and the sum of each block's quants at sums[t*nb:].
// bias[i] = q4Bias(sums[i]) is the start value of the arm64 Q4_0
// accumulators (see gemm_arm64.s.in).
type actQ8 struct {
	k, nb int
	qs    []byte
	ds    []float32
	sums  []int32
	bias  []int32
}

// floatMagic is the bits of the float32 1.5*2^23: an int32 accumulator
// started at floatMagic holds, after adding s with |s| < 2^22, the bits
// of the float 1.5*2^23 + s.
const floatMagic = 0x4B400000

// setBias fills bias[lo:hi] from sums: floatMagic - 8*sum, the Q4_0
// correction sum (n-8)*x = sum n*x - 8*sum x folded into the start value.
func (a *actQ8) setBias(lo, hi int) {
	for i := lo; i < hi; i++ {
		a.bias[i] = floatMagic - 8*a.sums[i]
	}
}

var actPool sync.Pool // *actQ8 scratch

func getAct(n, k int) *actQ8 {
	nb := k / qk
	a, _ := actPool.Get().(*actQ8)
	if a == nil {
		a = new(actQ8)
	}
	a.k, a.nb = k, nb
	if cap(a.qs) < n*k {
		a.qs = make([]byte, n*k)
	}
	if cap(a.ds) < n*nb {
		a.ds = make([]float32, n*nb)
		a.sums = make([]int32, n*nb)
		a.bias = make([]int32, n*nb)
	}
	a.qs, a.ds, a.sums, a.bias = a.qs[:n*k], a.ds[:n*nb], a.sums[:n*nb], a.bias[:n*nb]
	return a
}

// quantizeActGeneric quantizes the rows of src (len(src)/k tokens) into
// qs, ds and sums exactly as quantizeQ8Generic does.
func quantizeActGeneric(qs []byte, ds []float32, sums []int32, src []float32) {
	for b := 0; b < len(src)/qk; b++ {
		q := qs[b*qk : (b+1)*qk]
		ds[b] = F16ToF32(quantBlockQ8(q, src[b*qk:(b+1)*qk]))
		var s int32
		for _, v := range q {
			s += int32(int8(v))
		}
		sums[b] = s
	}
}

// tileFunc computes one 8-row group against nt <= 4 consecutive tokens
// starting at t0 over blocks [b0, b0+nb) of the packed record slice w
// (which starts at block b0):
//
//	out[u*ostride+i] (+)= sum over the blocks of row i . token t0+u
//
// adding to out when add is set, overwriting it otherwise.
type tileFunc func(out []float32, ostride int, w []byte, a *actQ8, t0, nt, b0, nb int, add bool)

// tileQ8Generic is the Go twin of the packed Q8_0 x Q8_0 tile kernels.
func tileQ8Generic(out []float32, ostride int, w []byte, a *actQ8, t0, nt, b0, nb int, add bool) {
	for u := 0; u < nt; u++ {
		t := t0 + u
		for i := 0; i < packRows; i++ {
			var acc float32
			for b := 0; b < nb; b++ {
				rec := w[b*packQ8Bytes : (b+1)*packQ8Bytes]
				x := a.qs[t*a.k+(b0+b)*qk : t*a.k+(b0+b+1)*qk]
				var s int32
				for j := 0; j < qk/4; j++ {
					wq := rec[j*32+4*i : j*32+4*i+4]
					xq := x[4*j : 4*j+4]
					for e := range 4 {
						s += int32(int8(wq[e])) * int32(int8(xq[e]))
					}
				}
				dw := math.Float32frombits(binary.LittleEndian.Uint32(rec[packRows*qk+4*i:]))
				acc += float32(s) * float32(dw*a.ds[t*a.nb+b0+b])
			}
			if add {
				out[u*ostride+i] += acc
			} else {
				out[u*ostride+i] = acc
			}
		}
	}
}

// tileQ4Generic is the Go twin of the packed Q4_0 x Q8_0 tile kernels.
func tileQ4Generic(out []float32, ostride int, w []byte, a *actQ8, t0, nt, b0, nb int, add bool) {
	for u := 0; u < nt; u++ {
		t := t0 + u
		for i := 0; i < packRows; i++ {
			var acc float32
			for b := 0; b < nb; b++ {
				rec := w[b*packQ4Bytes : (b+1)*packQ4Bytes]
				x := a.qs[t*a.k+(b0+b)*qk : t*a.k+(b0+b+1)*qk]
				var s int32
				for k := 0; k < qk/8; k++ {
					wq := rec[k*32+4*i : k*32+4*i+4]
					xlo, xhi := x[8*k:8*k+4], x[8*k+4:8*k+8]
					for e := range 4 {
						s += (int32(wq[e]&0xf) - 8) * int32(int8(xlo[e]))
						s += (int32(wq[e]>>4) - 8) * int32(int8(xhi[e]))
					}
				}
				dw := math.Float32frombits(binary.LittleEndian.Uint32(rec[packRows*qk/2+4*i:]))
				acc += float32(s) * float32(dw*a.ds[t*a.nb+b0+b])
			}
			if add {
				out[u*ostride+i] += acc
			} else {
				out[u*ostride+i] = acc
			}
		}
	}
}

// Blocking of the packed MatMul: a work unit is unitGroups groups of rows
// against unitTokens tokens; inside it the reduction runs in chunks of
// kcBlocks blocks so that the 8-row weight slice of a chunk and the four
// tokens of a tile stay in L1 while the unit's activations stay in L2.
const (
	unitGroups = 8
	unitTokens = 64
	kcBlocks   = 32
)

// matMulPacked is MatMul on packed weights.
func (p *Pool) matMulPacked(k *kernelSet, out []float32, m Matrix, x []float32, n int) {
	pw := m.packed
	tile := k.tileQ8
	if m.Type == Q4_0 {
		tile = k.tileQ4
	}
	K, R, nb := m.Cols, m.Rows, pw.nb
	a := getAct(n, K)
	defer actPool.Put(a)
	p.Run(n, func(lo, hi int) {
		k.quantAct(a.qs[lo*K:hi*K], a.ds[lo*nb:hi*nb], a.sums[lo*nb:hi*nb], x[lo*K:hi*K])
		if m.Type == Q4_0 {
			a.setBias(lo*nb, hi*nb)
		}
	})
	// group runs tile on group g, tokens [t0, t0+nt), blocks [b0, b1).
	group := func(g, t0, nt, b0, b1 int, add bool, scratch *[packRows * 4]float32) {
		w := pw.data[(g*nb+b0)*pw.rec : (g*nb+b1)*pw.rec]
		r0 := g * packRows
		if r0+packRows <= R {
			tile(out[t0*R+r0:], R, w, a, t0, nt, b0, b1-b0, add)
			return
		}
		rows := R - r0
		for u := 0; u < nt; u++ {
			copy(scratch[u*packRows:u*packRows+rows], out[(t0+u)*R+r0:])
		}
		tile(scratch[:], packRows, w, a, t0, nt, b0, b1-b0, add)
		for u := 0; u < nt; u++ {
			copy(out[(t0+u)*R+r0:(t0+u)*R+R], scratch[u*packRows:])
		}
	}
	G := pw.groups
	if n == 1 {
		// Decode: each weight record is read once, groups split over
		// threads in contiguous ranges so that every thread streams.
		p.Run(G, func(lo, hi int) {
			var scratch [packRows * 4]float32
			for g := lo; g < hi; g++ {
				group(g, 0, 1, 0, nb, false, &scratch)
			}
		})
		return
	}
	gbs := (G + unitGroups - 1) / unitGroups
	tbs := (n + unitTokens - 1) / unitTokens
	p.RunBalanced(gbs*tbs, func(lo, hi int) {
		var scratch [packRows * 4]float32
		for u := lo; u < hi; u++ {
			g0, t0 := (u/tbs)*unitGroups, (u%tbs)*unitTokens
			g1, t1 := min(g0+unitGroups, G), min(t0+unitTokens, n)
			for b0 := 0; b0 < nb; b0 += kcBlocks {
				b1 := min(b0+kcBlocks, nb)
				for g := g0; g < g1; g++ {
					for t := t0; t < t1; t += 4 {
						group(g, t, min(4, t1-t), b0, b1, b0 > 0, &scratch)
					}
				}
			}
		}
	})
}

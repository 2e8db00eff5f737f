package neon

import (
	"fmt"
	"sync"
)

// Matrix is a row-major weight matrix as GGUF stores it: ne0 = Cols (input
// features), ne1 = Rows (output features), each row RowBytes(Type, Cols).
type Matrix struct {
	Type       DType
	Rows, Cols int
	Data       []byte

	packed *packedWeights // set by Pack
}

// Row returns the bytes of row r.
func (m Matrix) Row(r int) []byte {
	rb := RowBytes(m.Type, m.Cols)
	return m.Data[r*rb : (r+1)*rb : (r+1)*rb]
}

// Check reports whether m's type, shape and data length agree.
func (m Matrix) Check() error {
	if err := CheckRow(m.Type, m.Cols); err != nil {
		return err
	}
	if m.Rows < 0 {
		return fmt.Errorf("matrix has %d rows", m.Rows)
	}
	if need := m.Rows * RowBytes(m.Type, m.Cols); len(m.Data) < need {
		return fmt.Errorf("%s matrix %dx%d needs %d bytes, has %d", m.Type, m.Rows, m.Cols, need, len(m.Data))
	}
	return nil
}

// Tiling of MatMul: a work unit is rowBlock rows of W against tokBlock
// tokens; inside it, pairs of rows run against pairs of tokens so that the
// two weight rows stay in L1 while the tokens stream from L2.
const (
	rowBlock = 32
	tokBlock = 64
)

// MatMul computes, for tokens t in [0, n) and rows r in [0, m.Rows):
//
//	out[t*m.Rows + r] = sum_c x[t*m.Cols + c] * W[r][c]
//
// For Q8_0 and Q4_0 weights x is first quantized to Q8_0 per token row
// (ggml's semantics); for F16 and F32 the products are taken in float32.
// Quantized matrices returned by Pack run on the packed tile kernels.
// It panics when the sizes disagree (a programming error; validate
// matrices from files with Matrix.Check). A nil Pool runs on the caller.
func (p *Pool) MatMul(out []float32, m Matrix, x []float32, n int) {
	if err := m.Check(); err != nil {
		panic("neon: MatMul: " + err.Error())
	}
	if len(x) < n*m.Cols || len(out) < n*m.Rows {
		panic(fmt.Sprintf("neon: MatMul: %dx%d matrix, %d tokens: x has %d values (want %d), out %d (want %d)",
			m.Rows, m.Cols, n, len(x), n*m.Cols, len(out), n*m.Rows))
	}
	if n <= 0 || m.Rows == 0 {
		return
	}
	p.matMulWith(kern, out, m, x, n)
}

// matMulWith is MatMul on the kernels of path k.
func (p *Pool) matMulWith(k *kernelSet, out []float32, m Matrix, x []float32, n int) {
	switch m.Type {
	case Q8_0, Q4_0:
		if m.packed != nil {
			p.matMulPacked(k, out, m, x, n)
			return
		}
		p.matMulQuant(k, out, m, x, n)
	case F32, F16:
		p.matMulFloat(k, out, m, x, n)
	}
}

var (
	bytePool  sync.Pool // *[]byte scratch for quantized activations
	floatPool sync.Pool // *[]float32 scratch for float weight panels
)

// getScratch returns a slice of length n from pool (contents undefined);
// put it back with pool.Put.
func getScratch[T any](pool *sync.Pool, n int) *[]T {
	if b, ok := pool.Get().(*[]T); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]T, n)
	return &b
}

func (p *Pool) matMulQuant(k *kernelSet, out []float32, m Matrix, x []float32, n int) {
	xrb := RowBytes(Q8_0, m.Cols)
	buf := getScratch[byte](&bytePool, n*xrb)
	defer bytePool.Put(buf)
	xq := *buf
	p.Run(n, func(lo, hi int) {
		k.quantQ8(xq[lo*xrb:hi*xrb], x[lo*m.Cols:hi*m.Cols])
	})
	dot, dot2 := k.dotQ8, k.dotQ8x2
	if m.Type == Q4_0 {
		dot, dot2 = k.dotQ4Q8, k.dotQ4Q8x2
	}
	wrb := RowBytes(m.Type, m.Cols)
	R := m.Rows
	if n == 1 {
		// Decode: each weight row is read once, rows split over threads.
		p.Run(R, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				out[r] = dot(m.Data[r*wrb:(r+1)*wrb], xq)
			}
		})
		return
	}
	rbs := (R + rowBlock - 1) / rowBlock
	tbs := (n + tokBlock - 1) / tokBlock
	p.RunBalanced(rbs*tbs, func(lo, hi int) {
		var o [4]float32
		for u := lo; u < hi; u++ {
			r0, t0 := (u/tbs)*rowBlock, (u%tbs)*tokBlock
			r1, t1 := min(r0+rowBlock, R), min(t0+tokBlock, n)
			r := r0
			for ; r+2 <= r1; r += 2 {
				w0 := m.Data[r*wrb : (r+1)*wrb]
				w1 := m.Data[(r+1)*wrb : (r+2)*wrb]
				t := t0
				for ; t+2 <= t1; t += 2 {
					dot2(&o, w0, w1, xq[t*xrb:(t+1)*xrb], xq[(t+1)*xrb:(t+2)*xrb])
					out[t*R+r] = o[0]
					out[t*R+r+1] = o[1]
					out[(t+1)*R+r] = o[2]
					out[(t+1)*R+r+1] = o[3]
				}
				if t < t1 {
					xt := xq[t*xrb : (t+1)*xrb]
					out[t*R+r] = dot(w0, xt)
					out[t*R+r+1] = dot(w1, xt)
				}
			}
			if r < r1 {
				w0 := m.Data[r*wrb : (r+1)*wrb]
				for t := t0; t < t1; t++ {
					out[t*R+r] = dot(w0, xq[t*xrb:(t+1)*xrb])
				}
			}
		}
	})
}

func (p *Pool) matMulFloat(k *kernelSet, out []float32, m Matrix, x []float32, n int) {
	C, R := m.Cols, m.Rows
	wrb := RowBytes(m.Type, C)
	if n == 1 {
		// Decode: one pass over each row (F16 converted on the fly).
		p.Run(R, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				if m.Type == F16 {
					out[r] = k.dotF16(m.Row(r), x[:C])
				} else {
					out[r] = k.dotF32(bytesAsF32(m.Row(r)), x[:C])
				}
			}
		})
		return
	}
	// Tokens: a unit is a block of rows, transposed (F16: converted, then
	// transposed) once into a panel (C x rows) and multiplied by every
	// token, tokBlock at a time, with GemmF32, whose register-tiled kernel
	// streams the panel's short rows.
	p.RunBalanced((R+rowBlock-1)/rowBlock, func(lo, hi int) {
		scratch := getScratch[float32](&floatPool, 2*C*rowBlock)
		defer floatPool.Put(scratch)
		panel, conv := (*scratch)[:C*rowBlock], (*scratch)[C*rowBlock:]
		for u := lo; u < hi; u++ {
			r0, r1 := u*rowBlock, min((u+1)*rowBlock, R)
			nr := r1 - r0
			var w []float32
			if m.Type == F32 {
				w = bytesAsF32(m.Data[r0*wrb : r1*wrb])
			} else {
				w = conv[:nr*C]
				k.f16ToF32(w, m.Data[r0*wrb:r1*wrb])
			}
			for r := 0; r < nr; r++ {
				for c, v := range w[r*C : (r+1)*C] {
					panel[c*nr+r] = v
				}
			}
			for t0 := 0; t0 < n; t0 += tokBlock {
				t1 := min(t0+tokBlock, n)
				k.gemmF32(out[t0*R+r0:], R, x[t0*C:], C, panel, nr, t1-t0, nr, C, false)
			}
		}
	})
}

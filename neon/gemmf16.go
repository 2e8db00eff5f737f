package neon

import "fmt"

// GemmF16 is GemmF32 with b in IEEE half precision (the bits, as
// F32ToF16 gives them):
//
//	c[i*ldc+j] = sum_p a[i*lda+p] * float32(b[p*ldb+j])   for i < m, j < n, p < k
//
// or, when add is set, adds the product to c. It is the decoder's
// cross-attention against keys and values kept in half precision, which
// halves the bytes a decode step reads for them. The assembly paths run
// each row over blocks of 64 columns, summing over p in order in float32
// (fused multiply-adds) before adding to c, and the Go twin over the last
// columns; the twin, the specification, adds each rounded product to c in
// turn, so the paths agree to float32 rounding. It panics when a slice is
// too short for its shape (a programming error).
func GemmF16(c []float32, ldc int, a []float32, lda int, b []uint16, ldb int, m, n, k int, add bool) {
	checkGemm("GemmF16", len(c), ldc, len(a), lda, len(b), ldb, m, n, k)
	kern.gemmF16(c, ldc, a, lda, b, ldb, m, n, k, add)
}

// ToF16 converts src to half precision into dst (as F32ToF16 does, value by
// value); dst must be at least as long as src.
func ToF16(dst []uint16, src []float32) {
	kern.toF16(dst[:len(src)], src)
}

// gemmF16Func is the signature of a path's GemmF16 (arguments checked).
type gemmF16Func func(c []float32, ldc int, a []float32, lda int, b []uint16, ldb int, m, n, k int, add bool)

// checkGemm panics unless the slices of lengths lc, la and lb hold an
// m x n x k product with the given strides.
func checkGemm(name string, lc, ldc, la, lda, lb, ldb, m, n, k int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("neon: %s: negative shape %dx%dx%d", name, m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	if ldc < n || (k > 0 && (lda < k || ldb < n)) {
		panic(fmt.Sprintf("neon: %s: strides lda %d ldb %d ldc %d too small for %dx%dx%d", name, lda, ldb, ldc, m, n, k))
	}
	if lc < (m-1)*ldc+n || (k > 0 && (la < (m-1)*lda+k || lb < (k-1)*ldb+n)) {
		panic(fmt.Sprintf("neon: %s: %dx%dx%d: a has %d values, b %d, c %d: too few", name, m, n, k, la, lb, lc))
	}
}

// gemmF16Generic is the specification: gemmF32Generic with each b value
// widened from half precision.
func gemmF16Generic(c []float32, ldc int, a []float32, lda int, b []uint16, ldb int, m, n, k int, add bool) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if !add {
			clear(ci)
		}
		for p, x := range a[i*lda : i*lda+k] {
			for j, y := range b[p*ldb : p*ldb+n] {
				ci[j] += float32(x * F16ToF32(y))
			}
		}
	}
}

// toF16Generic converts value by value with F32ToF16.
func toF16Generic(dst []uint16, src []float32) {
	for i, f := range src {
		dst[i] = F32ToF16(f)
	}
}

// gemmF16Row is an assembly kernel for one row of 64 (or 16) columns: c[j] (+)=
// sum_p a[p] * float32(b[p*ldb+j]) for j < 64 (16), over k >= 1 products summed
// in float32 before adding to c; add != 0 adds to c. ldb in elements.
type gemmF16Row func(c *float32, a *float32, b *uint16, ldb int, k, add int)

// gemmF16Rows runs row64 over each row's full blocks of 64 columns, row16
// over its blocks of 16 after them, and the Go twin over the columns left
// (fewer than 16).
func gemmF16Rows(row64, row16 gemmF16Row) gemmF16Func {
	return func(c []float32, ldc int, a []float32, lda int, b []uint16, ldb int, m, n, k int, add bool) {
		if m == 0 || n == 0 {
			return
		}
		if k == 0 {
			gemmF16Generic(c, ldc, a, lda, b, ldb, m, n, 0, add)
			return
		}
		addi := b2i(add)
		n64, n16 := n&^63, n&^15
		for i := 0; i < m; i++ {
			for j := 0; j < n64; j += 64 {
				row64(&c[i*ldc+j], &a[i*lda], &b[j], ldb, k, addi)
			}
			for j := n64; j < n16; j += 16 {
				row16(&c[i*ldc+j], &a[i*lda], &b[j], ldb, k, addi)
			}
		}
		if n16 < n {
			gemmF16Generic(c[n16:], ldc, a, lda, b[n16:], ldb, m, n-n16, k, add)
		}
	}
}

// toF16Blocks runs conv over the largest multiple of 8 values and the Go
// twin over the rest.
func toF16Blocks(conv func(dst *uint16, src *float32, n int)) func(dst []uint16, src []float32) {
	return func(dst []uint16, src []float32) {
		n := len(src) &^ 7
		if n > 0 {
			_ = dst[n-1]
			conv(&dst[0], &src[0], n)
		}
		toF16Generic(dst[n:], src[n:])
	}
}

package neon

// GemmF32 multiplies row-major float32 matrices on the calling goroutine:
//
//	c[i*ldc+j] = sum_p a[i*lda+p] * b[p*ldb+j]   for i < m, j < n, p < k
//
// or, when add is set, adds the product to c. It is the F32 GEMM of
// attention (scores as queries x transposed keys, then probabilities x
// values). The assembly paths compute tiles of 4 rows x 16 columns with
// broadcast multiply-adds, summing over p in order in float32 (fused
// multiply-adds) before adding to c; the Go twin adds each rounded product
// to c in turn, so the paths agree to float32 rounding. It panics when a slice
// is too short for its shape (a programming error).
func GemmF32(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, add bool) {
	checkGemmF32(c, ldc, a, lda, b, ldb, m, n, k)
	kern.gemmF32(c, ldc, a, lda, b, ldb, m, n, k, add)
}

// gemmF32Func is the signature of a path's GemmF32 (arguments checked).
type gemmF32Func func(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, add bool)

func checkGemmF32(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int) {
	checkGemm("GemmF32", len(c), ldc, len(a), lda, len(b), ldb, m, n, k)
}

// gemmF32Generic is the specification: c[i][j] starts at 0 (or at its
// value, with add), and the products a[i][p]*b[p][j], each rounded to
// float32, are added to it in order of p. It runs row by row, b read
// along its rows, and allocates nothing.
func gemmF32Generic(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, add bool) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if !add {
			clear(ci)
		}
		for p, x := range a[i*lda : i*lda+k] {
			for j, y := range b[p*ldb : p*ldb+n] {
				ci[j] += float32(x * y)
			}
		}
	}
}

// gemmF32Tile is an assembly micro-kernel: the 4 x 16 tile at c (row
// strides in elements) over k >= 1 products; add != 0 adds to c.
type gemmF32Tile func(c *float32, ldc int, a *float32, lda int, b *float32, ldb int, k, add int)

// gemmF32Row is an assembly kernel for one row of 64 columns: c[j] (+)=
// sum_p a[p] * b[p*ldb+j] for j < 64, over k >= 1 products summed in
// float32 before adding to c; add != 0 adds to c.
type gemmF32Row func(c *float32, a *float32, b *float32, ldb int, k, add int)

// gemmF32Tiles runs tile over the full 4 x 16 tiles of the product, the
// Go twin over the last columns (fewer than 16) of those rows, and for the
// last rows (fewer than 4; one query against many keys, the decoder's
// attention) row over their full blocks of 64 columns and axpy (y += a*x)
// over the columns left. The axpy columns add their products to c one at
// a time rather than summing them first: the same products, rounded in a
// different order.
func gemmF32Tiles(tile gemmF32Tile, row gemmF32Row, axpy func(y []float32, a float32, x []float32)) gemmF32Func {
	return func(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, add bool) {
		if m == 0 || n == 0 {
			return
		}
		if k == 0 {
			gemmF32Generic(c, ldc, a, lda, b, ldb, m, n, 0, add)
			return
		}
		addi := b2i(add)
		m4, n16, n64 := m&^3, n&^15, n&^63
		for i := 0; i < m4; i += 4 {
			for j := 0; j < n16; j += 16 {
				tile(&c[i*ldc+j], ldc, &a[i*lda], lda, &b[j], ldb, k, addi)
			}
		}
		if n16 < n && m4 > 0 {
			gemmF32Generic(c[n16:], ldc, a, lda, b[n16:], ldb, m4, n-n16, k, add)
		}
		for i := m4; i < m; i++ {
			ai := a[i*lda : i*lda+k]
			for j := 0; j < n64; j += 64 {
				row(&c[i*ldc+j], &ai[0], &b[j], ldb, k, addi)
			}
			if n64 == n {
				continue
			}
			ci := c[i*ldc+n64 : i*ldc+n]
			if !add {
				clear(ci)
			}
			for p, x := range ai {
				axpy(ci, x, b[p*ldb+n64:p*ldb+n])
			}
		}
	}
}

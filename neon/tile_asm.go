//go:build !purego && (amd64 || arm64)

package neon

// Wrappers of the assembly tile kernels: one bounds check per call, then
// a 4-token kernel and 1-token kernels for the rest.

type (
	tileQ8T4Func func(out *float32, ostride int, w, x *byte, xstride int, d *float32, dstride, nb, add int)
	tileQ8T1Func func(out *float32, w, x *byte, d *float32, nb, add int)
	tileQ4T4Func func(out *float32, ostride int, w, x *byte, xstride int, d *float32, s *int32, dstride, nb, add int)
	tileQ4T1Func func(out *float32, w, x *byte, d *float32, s *int32, nb, add int)
)

// checkTile bounds-checks the operands of a tile call once, so that the
// assembly can run unchecked.
func checkTile(out []float32, ostride int, w []byte, rec int, a *actQ8, t0, nt, b0, nb int) {
	_ = w[nb*rec-1]
	_ = a.qs[(t0+nt-1)*a.k+(b0+nb)*qk-1]
	_ = a.ds[(t0+nt-1)*a.nb+b0+nb-1]
	_ = a.sums[(t0+nt-1)*a.nb+b0+nb-1]
	_ = a.bias[(t0+nt-1)*a.nb+b0+nb-1]
	_ = out[(nt-1)*ostride+packRows-1]
}

// tileQ8Asm wraps Q8_0 tile kernels, which need no block sums, as
// tileSumsAsm's kernels.
func tileQ8Asm(t4 tileQ8T4Func, t1 tileQ8T1Func) tileFunc {
	return tileSumsAsm(packQ8Bytes, tileQ8Generic,
		func(out *float32, ostride int, w, x *byte, xstride int, d *float32, _ *int32, dstride, nb, add int) {
			t4(out, ostride, w, x, xstride, d, dstride, nb, add)
		},
		func(out *float32, w, x *byte, d *float32, _ *int32, nb, add int) {
			t1(out, w, x, d, nb, add)
		}, false)
}

// tileQ4Asm wraps Q4_0 tile kernels; the 4-token kernel gets the block
// sums, or with bias set actQ8.bias.
func tileQ4Asm(t4 tileQ4T4Func, t1 tileQ4T1Func, bias bool) tileFunc {
	return tileSumsAsm(packQ4Bytes, tileQ4Generic, t4, t1, bias)
}

// tileSumsAsm wraps tile kernels that take the block sums (or biases),
// for records of rec bytes whose Go twin is gen.
func tileSumsAsm(rec int, gen tileFunc, t4 tileQ4T4Func, t1 tileQ4T1Func, bias bool) tileFunc {
	return func(out []float32, ostride int, w []byte, a *actQ8, t0, nt, b0, nb int, add bool) {
		if nb == 0 || nt == 0 {
			gen(out, ostride, w, a, t0, nt, b0, nb, add)
			return
		}
		checkTile(out, ostride, w, rec, a, t0, nt, b0, nb)
		u := 0
		if nt == 4 {
			t := t0*a.nb + b0
			s := &a.sums[t]
			if bias {
				s = &a.bias[t]
			}
			t4(&out[0], ostride, &w[0], &a.qs[t0*a.k+b0*qk], a.k, &a.ds[t], s, a.nb, nb, b2i(add))
			u = 4
		}
		for ; u < nt; u++ {
			t := (t0+u)*a.nb + b0
			t1(&out[u*ostride], &w[0], &a.qs[(t0+u)*a.k+b0*qk], &a.ds[t], &a.sums[t], nb, b2i(add))
		}
	}
}

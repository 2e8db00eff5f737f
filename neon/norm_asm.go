//go:build !purego && (amd64 || arm64)

package neon

// asmNorms wraps an architecture's LayerNorm and RMSNorm assembly (the
// sums and the apply passes, width floats per vector) as normKernels:
// empty rows return at once, and the slices are bounds-checked once so
// that the assembly runs unchecked.
func asmNorms(
	sum func(x *float32, n int) float64,
	sumSqDev func(x *float32, n int, mean float64) float64,
	layerApply func(dst, x, w, b *float32, n int, m, inv float32),
	rmsApply func(dst, x, w *float32, n int, inv float32),
	width int,
) normKernels {
	return normKernels{
		sum: func(x []float32) float64 {
			if len(x) == 0 {
				return 0
			}
			return sum(&x[0], len(x))
		},
		sumSqDev: func(x []float32, mean float64) float64 {
			if len(x) == 0 {
				return 0
			}
			return sumSqDev(&x[0], len(x), mean)
		},
		layerApply: func(dst, x, w, b []float32, m, inv float32) {
			if len(x) == 0 {
				return
			}
			_, _, _ = dst[len(x)-1], w[len(x)-1], b[len(x)-1]
			layerApply(&dst[0], &x[0], &w[0], &b[0], len(x), m, inv)
		},
		rmsApply: func(dst, x, w []float32, inv float32) {
			if len(x) == 0 {
				return
			}
			_, _ = dst[len(x)-1], w[len(x)-1]
			rmsApply(&dst[0], &x[0], &w[0], len(x), inv)
		},
		width: width,
	}
}

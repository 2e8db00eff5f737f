package neon

import "math"

// The Go twins of the element-wise kernels.

func layerNormGeneric(dst, x, w, b []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(n)
	var sq float64
	for _, v := range x {
		d := float64(v) - mean
		sq += d * d
	}
	inv := float32(1 / math.Sqrt(sq/float64(n)+float64(eps)))
	layerNormApply(dst[:n], x, w, b, float32(mean), inv)
}

// layerNormApply writes (x - m) * inv * w + b (w, b may be nil).
func layerNormApply(dst, x, w, b []float32, m, inv float32) {
	n := len(x)
	dst = dst[:n]
	switch {
	case w != nil && b != nil:
		w, b = w[:n], b[:n]
		for i, v := range x {
			dst[i] = (v-m)*inv*w[i] + b[i]
		}
	case w != nil:
		w = w[:n]
		for i, v := range x {
			dst[i] = (v - m) * inv * w[i]
		}
	case b != nil:
		b = b[:n]
		for i, v := range x {
			dst[i] = (v-m)*inv + b[i]
		}
	default:
		for i, v := range x {
			dst[i] = (v - m) * inv
		}
	}
}

func rmsNormGeneric(dst, x, w []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	var sq float64
	for _, v := range x {
		sq += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(sq/float64(n)+float64(eps)))
	rmsNormApply(dst[:n], x, w, inv)
}

// rmsNormApply writes x * inv * w (w may be nil).
func rmsNormApply(dst, x, w []float32, inv float32) {
	dst = dst[:len(x)]
	if w == nil {
		for i, v := range x {
			dst[i] = v * inv
		}
		return
	}
	w = w[:len(x)]
	for i, v := range x {
		dst[i] = v * inv * w[i]
	}
}

// normKernels are the vector parts of LayerNorm and RMSNorm on a prefix
// whose length is a multiple of width: float64 sums as the twins do them
// and the float32 apply step in the twins' operation order.
type normKernels struct {
	sum        func(x []float32) float64
	sumSqDev   func(x []float32, mean float64) float64 // sum (x-mean)^2
	layerApply func(dst, x, w, b []float32, m, inv float32)
	rmsApply   func(dst, x, w []float32, inv float32)
	width      int
}

// layerNorm is layerNormGeneric on the kernels of k.
func (k *normKernels) layerNorm(dst, x, w, b []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	dst = dst[:n]
	v := n - n%k.width
	sum := k.sum(x[:v])
	for _, e := range x[v:] {
		sum += float64(e)
	}
	mean := sum / float64(n)
	sq := k.sumSqDev(x[:v], mean)
	for _, e := range x[v:] {
		d := float64(e) - mean
		sq += d * d
	}
	inv := float32(1 / math.Sqrt(sq/float64(n)+float64(eps)))
	m := float32(mean)
	if w == nil || b == nil {
		layerNormApply(dst, x, w, b, m, inv)
		return
	}
	w, b = w[:n], b[:n]
	k.layerApply(dst[:v], x[:v], w[:v], b[:v], m, inv)
	layerNormApply(dst[v:], x[v:], w[v:], b[v:], m, inv)
}

// rmsNorm is rmsNormGeneric on the kernels of k.
func (k *normKernels) rmsNorm(dst, x, w []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	dst = dst[:n]
	v := n - n%k.width
	sq := k.sumSqDev(x[:v], 0)
	for _, e := range x[v:] {
		sq += float64(e) * float64(e)
	}
	inv := float32(1 / math.Sqrt(sq/float64(n)+float64(eps)))
	if w == nil {
		rmsNormApply(dst, x, w, inv)
		return
	}
	w = w[:n]
	k.rmsApply(dst[:v], x[:v], w[:v], inv)
	rmsNormApply(dst[v:], x[v:], w[v:], inv)
}

// geluTanhGeneric is 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))).
func geluTanhGeneric(x []float32) {
	const c = 0.7978845608028654 // sqrt(2/pi)
	for i, v := range x {
		y := float64(v)
		x[i] = float32(0.5 * y * (1 + math.Tanh(c*y*(1+0.044715*y*y))))
	}
}

// siluGeneric is x*sigmoid(x).
func siluGeneric(x []float32) {
	for i, v := range x {
		x[i] = float32(float64(v) / (1 + math.Exp(-float64(v))))
	}
}

// softmaxGeneric is exp(x-max)/sum in place; -Inf entries become 0.
func softmaxGeneric(x []float32) {
	if len(x) == 0 {
		return
	}
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	if math.IsInf(float64(m), -1) {
		// All entries masked: a uniform distribution would be invented,
		// so return zeros.
		clear(x)
		return
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

func scaleGeneric(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

func addGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

func mulGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// softmaxWith is Softmax with the exponentiation pass exp(x - m) in place
// (returning the sum) done by expSum.
func softmaxWith(x []float32, expSum func(x []float32, m float32) float32) {
	if len(x) == 0 {
		return
	}
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	if math.IsInf(float64(m), -1) {
		clear(x)
		return
	}
	inv := 1 / expSum(x, m)
	for i := range x {
		x[i] *= inv
	}
}

// softmaxExpGeneric sets x[i] = exp(x[i] - m) and returns the sum.
func softmaxExpGeneric(x []float32, m float32) float32 {
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += e
	}
	return sum
}

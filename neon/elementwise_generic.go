package neon

import "math"

// The Go twins of the element-wise kernels.

func layerNormGeneric(dst, x, w, b []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	dst = dst[:n]
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
	m := float32(mean)
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
	dst = dst[:n]
	var sq float64
	for _, v := range x {
		sq += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(sq/float64(n)+float64(eps)))
	if w == nil {
		for i, v := range x {
			dst[i] = v * inv
		}
		return
	}
	w = w[:n]
	for i, v := range x {
		dst[i] = v * inv * w[i]
	}
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

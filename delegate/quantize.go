package delegate

import (
	"fmt"
	"math"
)

// quantize chooses every tensor's quantization: activations from their
// calibrated ranges (shared by tied tensors, fixed where the int8 kernel
// demands it), weights symmetric (per output channel for the convolution),
// biases at input scale x weight scale.
func (g *graph) quantize() error {
	type span struct {
		lo, hi    float32
		seen      bool
		fixed     *quant
		symmetric bool
	}
	groups := map[int]*span{}
	for i, t := range g.t {
		if t.role != roleActivation {
			continue
		}
		r := g.root(i)
		s := groups[r]
		if s == nil {
			s = &span{}
			groups[r] = s
		}
		if t.seen {
			if !s.seen {
				s.lo, s.hi, s.seen = t.lo, t.hi, true
			} else {
				s.lo, s.hi = min(s.lo, t.lo), max(s.hi, t.hi)
			}
		}
		if t.fixed != nil {
			s.fixed = t.fixed
		}
		s.symmetric = s.symmetric || t.symmetric
	}
	for i, t := range g.t {
		switch t.role {
		case roleActivation:
			s := groups[g.root(i)]
			switch {
			case s.fixed != nil:
				t.q = *s.fixed
			case !s.seen:
				return fmt.Errorf("tensor %s has no calibrated range", t.name)
			case s.symmetric:
				t.q = symmetricQuant(max(-s.lo, s.hi))
			default:
				t.q = rangeQuant(s.lo, s.hi)
			}
		case roleConst:
			lo, hi := minMax(t.data)
			t.q = rangeQuant(lo, hi)
		case roleWeight:
			lo, hi := minMax(t.data)
			t.q = symmetricQuant(max(-lo, hi))
		case roleConvWeight:
			per := numel(t.shape) / t.shape[0]
			t.scales = make([]float32, t.shape[0])
			for o := range t.scales {
				lo, hi := minMax(t.data[o*per : (o+1)*per])
				t.scales[o] = symmetricQuant(max(-lo, hi)).scale
			}
		}
	}
	// Biases take the scale of their operator's input times its weights'.
	for _, op := range g.ops {
		if (op.code != opFC && op.code != opConv2D) || len(op.in) < 3 || op.in[2] < 0 {
			continue
		}
		x, w, b := g.t[op.in[0]], g.t[op.in[1]], g.t[op.in[2]]
		if w.role == roleConvWeight {
			b.scales = make([]float32, len(w.scales))
			for o, s := range w.scales {
				b.scales[o] = x.q.scale * s
			}
		} else {
			b.q = quant{scale: x.q.scale * w.q.scale}
		}
	}
	return nil
}

func minMax(v []float32) (lo, hi float32) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi = v[0], v[0]
	for _, e := range v {
		lo, hi = min(lo, e), max(hi, e)
	}
	return lo, hi
}

// rangeQuant maps [lo, hi] (widened to hold 0) onto int8.
func rangeQuant(lo, hi float32) quant {
	lo, hi = min(lo, 0), max(hi, 0)
	if hi-lo < 1e-8 {
		hi = lo + 1e-8
	}
	scale := (hi - lo) / 255
	zp := math.Round(float64(-128 - lo/scale))
	return quant{scale: scale, zp: int32(min(max(zp, -128), 127))}
}

// symmetricQuant maps [-m, m] onto [-127, 127] with zero point 0.
func symmetricQuant(m float32) quant {
	if m < 1e-8 {
		m = 1e-8
	}
	return quant{scale: m / 127, zp: 0}
}

// int8s quantizes v with q.
func int8s(v []float32, q quant) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		r := math.RoundToEven(float64(x/q.scale)) + float64(q.zp)
		out[i] = byte(int8(min(max(r, -128), 127)))
	}
	return out
}

// tensorBytes is the stored content of a constant tensor.
func (t *gtensor) tensorBytes() []byte {
	switch t.role {
	case roleInt32:
		b := make([]byte, 4*len(t.ints))
		for i, v := range t.ints {
			putU32(b[4*i:], uint32(v))
		}
		return b
	case roleBias:
		b := make([]byte, 4*len(t.data))
		for i, v := range t.data {
			s := t.q.scale
			if t.scales != nil {
				s = t.scales[i]
			}
			r := math.RoundToEven(float64(v / s))
			r = min(max(r, math.MinInt32), math.MaxInt32)
			putU32(b[4*i:], uint32(int32(r)))
		}
		return b
	case roleConvWeight:
		per := numel(t.shape) / t.shape[0]
		b := make([]byte, 0, len(t.data))
		for o, s := range t.scales {
			b = append(b, int8s(t.data[o*per:(o+1)*per], quant{scale: s})...)
		}
		return b
	case roleWeight, roleConst:
		return int8s(t.data, t.q)
	}
	return nil
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

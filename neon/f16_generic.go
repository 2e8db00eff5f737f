package neon

import "math"

// F16ToF32 converts an IEEE 754 half-precision value to float32 exactly,
// subnormals, infinities and NaNs included.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf, NaN (payload kept, quiet bit set by shifting)
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: man * 2^-24, exact in float32.
	f := float32(man) * (1.0 / (1 << 24))
	return math.Float32frombits(sign | math.Float32bits(f))
}

// F32ToF16 converts f to half precision, rounding to nearest even; values
// beyond the half range become infinities and NaNs stay NaN (0x7e00 with
// the sign), exactly as ggml's ggml_compute_fp32_to_fp16.
func F32ToF16(f float32) uint16 {
	const scaleToInf = 0x1.0p+112
	const scaleToZero = 0x1.0p-110
	// The explicit conversions keep each product rounded to float32 (no
	// fused multiply-add), as the algorithm requires.
	base := float32(float32(abs32(f)*scaleToInf) * scaleToZero)
	w := math.Float32bits(f)
	shl1w := w + w
	sign := w & 0x80000000
	bias := shl1w & 0xff000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = math.Float32frombits(bias>>1+0x07800000) + base
	bits := math.Float32bits(base)
	expBits := (bits >> 13) & 0x7c00
	manBits := bits & 0x0fff
	nonsign := expBits + manBits
	if shl1w > 0xff000000 {
		nonsign = 0x7e00
	}
	return uint16(sign>>16) | uint16(nonsign)
}

func abs32(f float32) float32 {
	return math.Float32frombits(math.Float32bits(f) &^ 0x80000000)
}

// f16ToF32Generic converts len(dst) little-endian halves from src.
func f16ToF32Generic(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = f16(src[2*i:])
	}
}

// dotF16Generic returns sum half(w[i]) * x[i] over len(x) elements.
func dotF16Generic(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s float32
	for i, v := range x {
		s += f16(w[2*i:]) * v
	}
	return s
}

package neon

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantize writes src in layout t to dst. len(src) must be a multiple of
// t's block size and len(dst) at least RowBytes(t, len(src)); it panics
// otherwise (a programming error).
//
// Q8_0 block: f16 scale d = amax/127, then 32 int8 q = round(x/d).
// Q4_0 block: f16 scale d = max/-8 (max = the value of largest magnitude,
// with its sign), 16 bytes: byte j holds element j in the low nibble and
// element j+16 in the high nibble, value = (nibble - 8) * d. These are
// exactly ggml's quantize_row_q8_0_ref and quantize_row_q4_0_ref.
func Quantize(t DType, dst []byte, src []float32) {
	need := RowBytes(t, len(src))
	if len(dst) < need {
		panic(fmt.Sprintf("neon: Quantize %s: dst has %d bytes, want %d", t, len(dst), need))
	}
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(v))
		}
	case Q8_0:
		quantizeQ8(dst, src)
	case Q4_0:
		quantizeQ4Generic(dst, src)
	}
}

// Dequantize expands src (layout t) into dst; len(dst) must be a multiple
// of the block size and src at least RowBytes(t, len(dst)) long.
func Dequantize(t DType, dst []float32, src []byte) {
	need := RowBytes(t, len(dst))
	if len(src) < need {
		panic(fmt.Sprintf("neon: Dequantize %s: src has %d bytes, want %d", t, len(src), need))
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		kern.f16ToF32(dst, src)
	case Q8_0:
		for b := 0; b < len(dst)/qk; b++ {
			blk := src[b*q8Bytes : (b+1)*q8Bytes]
			d := F16ToF32(binary.LittleEndian.Uint16(blk))
			out := dst[b*qk : (b+1)*qk]
			for j := range out {
				out[j] = float32(int8(blk[2+j])) * d
			}
		}
	case Q4_0:
		for b := 0; b < len(dst)/qk; b++ {
			blk := src[b*q4Bytes : (b+1)*q4Bytes]
			d := F16ToF32(binary.LittleEndian.Uint16(blk))
			out := dst[b*qk : (b+1)*qk]
			for j := 0; j < qk/2; j++ {
				q := blk[2+j]
				out[j] = float32(int(q&0xf)-8) * d
				out[j+qk/2] = float32(int(q>>4)-8) * d
			}
		}
	}
}

// quantizeQ8Generic is ggml's quantize_row_q8_0_ref. The activation side
// of every Q8 kernel relies on its output range [-127, 127].
func quantizeQ8Generic(dst []byte, src []float32) {
	for b := 0; b < len(src)/qk; b++ {
		blk := dst[b*q8Bytes : (b+1)*q8Bytes]
		binary.LittleEndian.PutUint16(blk, quantBlockQ8(blk[2:2+qk], src[b*qk:(b+1)*qk]))
	}
}

// quantBlockQ8 quantizes one block of qk values into q as ggml's
// quantize_row_q8_0_ref does and returns the block's half-precision scale.
func quantBlockQ8(q []byte, x []float32) uint16 {
	var amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax = a
		}
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for j, v := range x {
		q[j] = byte(int8(roundf(float32(v * id))))
	}
	return F32ToF16(d)
}

// quantizeQ4Generic is ggml's quantize_row_q4_0_ref.
func quantizeQ4Generic(dst []byte, src []float32) {
	for b := 0; b < len(src)/qk; b++ {
		x := src[b*qk : (b+1)*qk]
		blk := dst[b*q4Bytes : (b+1)*q4Bytes]
		var amax, max float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax = a
				max = v
			}
		}
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		for j := 0; j < qk/2; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[qk/2+j] * id)
			xi0 := min(15, int8(float32(x0+8.5)))
			xi1 := min(15, int8(float32(x1+8.5)))
			blk[2+j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// roundf rounds half away from zero, like C's roundf.
func roundf(x float32) float32 {
	return float32(math.Round(float64(x)))
}

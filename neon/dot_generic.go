package neon

import "encoding/binary"

// The Go twins of the dot-product kernels. Quantized rows are whole
// blocks; the activation operand x is Q8_0 as quantizeQ8 writes it, with
// quants in [-127, 127] (the weight operand may hold -128).

// dotQ8Generic returns the dot product of two Q8_0 rows of equal length.
func dotQ8Generic(w, x []byte) float32 {
	nb := len(x) / q8Bytes
	var sum float32
	for b := 0; b < nb; b++ {
		wb := w[b*q8Bytes : (b+1)*q8Bytes : (b+1)*q8Bytes]
		xb := x[b*q8Bytes : (b+1)*q8Bytes : (b+1)*q8Bytes]
		var s int32
		for j := 2; j < q8Bytes; j++ {
			s += int32(int8(wb[j])) * int32(int8(xb[j]))
		}
		sum += float32(s) * (f16(wb) * f16(xb))
	}
	return sum
}

// dotQ4Q8Generic returns the dot product of a Q4_0 row and a Q8_0 row.
func dotQ4Q8Generic(w, x []byte) float32 {
	nb := len(x) / q8Bytes
	var sum float32
	for b := 0; b < nb; b++ {
		wb := w[b*q4Bytes : (b+1)*q4Bytes : (b+1)*q4Bytes]
		xb := x[b*q8Bytes : (b+1)*q8Bytes : (b+1)*q8Bytes]
		var s int32
		for j := 0; j < qk/2; j++ {
			q := wb[2+j]
			s += (int32(q&0xf) - 8) * int32(int8(xb[2+j]))
			s += (int32(q>>4) - 8) * int32(int8(xb[2+qk/2+j]))
		}
		sum += float32(s) * (f16(wb) * f16(xb))
	}
	return sum
}

// dotQ8x2Generic computes the 2x2 tile out = {w0·x0, w1·x0, w0·x1, w1·x1}.
func dotQ8x2Generic(out *[4]float32, w0, w1, x0, x1 []byte) {
	out[0] = dotQ8Generic(w0, x0)
	out[1] = dotQ8Generic(w1, x0)
	out[2] = dotQ8Generic(w0, x1)
	out[3] = dotQ8Generic(w1, x1)
}

// dotQ4Q8x2Generic is dotQ8x2Generic for Q4_0 weights.
func dotQ4Q8x2Generic(out *[4]float32, w0, w1, x0, x1 []byte) {
	out[0] = dotQ4Q8Generic(w0, x0)
	out[1] = dotQ4Q8Generic(w1, x0)
	out[2] = dotQ4Q8Generic(w0, x1)
	out[3] = dotQ4Q8Generic(w1, x1)
}

// dotF32Generic returns sum a[i]*b[i] over len(a) elements.
func dotF32Generic(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGeneric computes y += a*x over len(y) elements.
func axpyGeneric(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

// f16 reads the little-endian half-precision scale at the start of a block.
func f16(b []byte) float32 {
	return F16ToF32(binary.LittleEndian.Uint16(b))
}

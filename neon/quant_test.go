package neon

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// The ggml reference quantizers, transcribed from ggml-quants.c
// (quantize_row_q8_0_ref, quantize_row_q4_0_ref) in their own form: one
// block at a time into a struct, then serialized.

type refQ8Block struct {
	d  uint16
	qs [32]int8
}

func refQuantQ8(x []float32) refQ8Block {
	var amax float32
	for j := 0; j < 32; j++ {
		amax = float32(math.Max(float64(amax), math.Abs(float64(x[j]))))
	}
	d := amax / float32((1<<7)-1)
	id := float32(0)
	if d != 0 {
		id = 1.0 / d
	}
	var y refQ8Block
	y.d = F32ToF16(d)
	for j := 0; j < 32; j++ {
		x0 := float32(x[j] * id)
		y.qs[j] = int8(math.Round(float64(x0)))
	}
	return y
}

type refQ4Block struct {
	d  uint16
	qs [16]uint8
}

func refQuantQ4(x []float32) refQ4Block {
	amax, max := float32(0), float32(0)
	for j := 0; j < 32; j++ {
		v := x[j]
		if amax < float32(math.Abs(float64(v))) {
			amax = float32(math.Abs(float64(v)))
			max = v
		}
	}
	d := max / -8
	id := float32(0)
	if d != 0 {
		id = 1.0 / d
	}
	var y refQ4Block
	y.d = F32ToF16(d)
	for j := 0; j < 16; j++ {
		x0 := float32(x[j] * id)
		x1 := float32(x[16+j] * id)
		xi0 := uint8(min(15, int8(float32(x0+8.5))))
		xi1 := uint8(min(15, int8(float32(x1+8.5))))
		y.qs[j] = xi0 | xi1<<4
	}
	return y
}

func randVec(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// quantInputs returns blocks that exercise the edge cases: zeros, ties of
// roundf, a single outlier, all equal, negative maxima, tiny and huge
// scales, plus random data.
func quantInputs() [][]float32 {
	r := rand.New(rand.NewPCG(3, 4))
	var in [][]float32
	in = append(in, make([]float32, 32))
	tie := make([]float32, 32)
	for j := range tie {
		tie[j] = (float32(j) - 16 + 0.5) // x/d hits .5 for d = 1 when amax = 127
	}
	tie[0] = 127
	in = append(in, tie)
	out := make([]float32, 32)
	out[7] = -3
	in = append(in, out)
	eq := make([]float32, 32)
	for j := range eq {
		eq[j] = -1.5
	}
	in = append(in, eq)
	ramp := make([]float32, 32)
	for j := range ramp {
		ramp[j] = float32(j) - 20
	}
	in = append(in, ramp)
	in = append(in, randVec(r, 32, 1e-6), randVec(r, 32, 1e4), randVec(r, 32, 1e-9))
	for i := 0; i < 500; i++ {
		in = append(in, randVec(r, 32, float32(math.Exp(r.NormFloat64()*3))))
	}
	return in
}

func TestQuantizeQ8MatchesGGML(t *testing.T) {
	for _, k := range kernelPaths() {
		t.Run(k.path, func(t *testing.T) {
			for i, x := range quantInputs() {
				got := make([]byte, q8Bytes)
				k.quantQ8(got, x)
				want := refQuantQ8(x)
				if d := binary.LittleEndian.Uint16(got); d != want.d {
					t.Fatalf("input %d: scale %#04x, want %#04x", i, d, want.d)
				}
				for j := 0; j < 32; j++ {
					if int8(got[2+j]) != want.qs[j] {
						t.Fatalf("input %d: q[%d] = %d, want %d (x = %g)", i, j, int8(got[2+j]), want.qs[j], x[j])
					}
				}
			}
		})
	}
	// Quantize uses the same kernel.
	x := quantInputs()[9]
	a, b := make([]byte, q8Bytes), make([]byte, q8Bytes)
	Quantize(Q8_0, a, x)
	quantizeQ8Generic(b, x)
	if string(a) != string(b) {
		t.Fatal("Quantize(Q8_0) differs from the twin")
	}
}

func TestQuantizeQ4MatchesGGML(t *testing.T) {
	for i, x := range quantInputs() {
		got := make([]byte, q4Bytes)
		Quantize(Q4_0, got, x)
		want := refQuantQ4(x)
		if d := binary.LittleEndian.Uint16(got); d != want.d {
			t.Fatalf("input %d: scale %#04x, want %#04x", i, d, want.d)
		}
		for j := 0; j < 16; j++ {
			if got[2+j] != want.qs[j] {
				t.Fatalf("input %d: byte %d = %#02x, want %#02x", i, j, got[2+j], want.qs[j])
			}
		}
	}
}

// Hand-checked blocks: the layout is what ggml writes.
func TestQuantizeGolden(t *testing.T) {
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j) - 16 // -16..15, max magnitude -16
	}
	q4 := make([]byte, q4Bytes)
	Quantize(Q4_0, q4, x)
	// d = -16/-8 = 2 (f16 0x4000); id = 0.5; element j: (j-16)*0.5+8.5
	// truncated: j=0 -> 0, j=16 -> 8 (byte 0 = 0x80); j=1 -> 1, j=17 -> 9;
	// j=15 -> 8, j=31 -> 16 clamped to 15 (byte 15 = 0xf8).
	if d := binary.LittleEndian.Uint16(q4); d != 0x4000 {
		t.Fatalf("q4 scale %#04x, want 0x4000", d)
	}
	if q4[2] != 0x80 || q4[3] != 0x91 || q4[17] != 0xf8 {
		t.Fatalf("q4 bytes % x", q4[2:])
	}
	q8 := make([]byte, q8Bytes)
	Quantize(Q8_0, q8, x)
	// d = 16/127; q = round(x*127/16): -16 -> -127, 15 -> 119 (119.06), 1 -> 8 (7.94).
	if int8(q8[2]) != -127 || int8(q8[2+31]) != 119 || int8(q8[2+17]) != 8 {
		t.Fatalf("q8 quants %v", q8[2:])
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 32 * 40
	x := randVec(r, n, 2)
	for _, typ := range []DType{F32, F16, Q8_0, Q4_0} {
		buf := make([]byte, RowBytes(typ, n))
		Quantize(typ, buf, x)
		y := make([]float32, n)
		Dequantize(typ, y, buf)
		for b := 0; b < n; b += typ.BlockSize() {
			blk := x[b : b+typ.BlockSize()]
			var amax float64
			for _, v := range blk {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			var tol float64
			switch typ {
			case F16:
				tol = amax / 2048
			case Q8_0:
				tol = amax/127/2 + amax/2048 // half a step plus 127 times the f16 scale error
			case Q4_0:
				tol = amax / 8 * 1.01 // the top value is clamped to 7, a whole step
			}
			for j := range blk {
				if e := math.Abs(float64(y[b+j] - blk[j])); e > tol {
					t.Fatalf("%s: element %d: %g -> %g (error %g > %g)", typ, b+j, blk[j], y[b+j], e, tol)
				}
			}
		}
	}
}

func TestDTypeNames(t *testing.T) {
	for _, typ := range []DType{F32, F16, Q4_0, Q8_0} {
		got, err := ParseDType(typ.String())
		if err != nil || got != typ {
			t.Fatalf("ParseDType(%q) = %v, %v", typ.String(), got, err)
		}
	}
	if _, err := ParseDType("q5_1"); err == nil {
		t.Fatal("ParseDType(q5_1) succeeded")
	}
	if RowBytes(Q8_0, 64) != 68 || RowBytes(Q4_0, 64) != 36 || RowBytes(F16, 3) != 6 || RowBytes(F32, 3) != 12 {
		t.Fatal("RowBytes")
	}
	if err := CheckRow(Q8_0, 33); err == nil {
		t.Fatal("CheckRow(Q8_0, 33) succeeded")
	}
}

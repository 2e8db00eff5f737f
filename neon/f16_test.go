package neon

import (
	"math"
	"math/rand/v2"
	"testing"
)

// halfValue is the exact value of a finite half (0x7c00 counts as 2^16,
// the rounding boundary of the largest finite half).
func halfValue(h uint16) float64 {
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	var v float64
	if e == 0 {
		v = math.Ldexp(m, -24)
	} else {
		v = math.Ldexp(1024+m, e-25)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

// refF32ToF16 rounds to nearest even by search over the half values.
func refF32ToF16(f float32) uint16 {
	var sign uint16
	if math.Signbit(float64(f)) {
		sign = 0x8000
	}
	a := math.Abs(float64(f))
	switch {
	case math.IsNaN(a):
		return sign | 0x7e00
	case a >= 65536:
		return sign | 0x7c00
	}
	// Largest h in [0, 0x7c00] with halfValue(h) <= a.
	lo, hi := uint16(0), uint16(0x7c00)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if halfValue(mid) <= a {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	h := lo
	if h < 0x7c00 {
		below, above := a-halfValue(h), halfValue(h+1)-a
		if above < below || (above == below && h&1 == 1) {
			h++
		}
	}
	return sign | h
}

func TestF16ToF32All(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		e := (h >> 10) & 0x1f
		switch {
		case e == 0x1f && h&0x3ff == 0:
			if !math.IsInf(float64(got), 0) || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToF32(%#04x) = %v, want infinity", h, got)
			}
		case e == 0x1f:
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
		default:
			if want := halfValue(h); float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
			}
			if back := F32ToF16(got); back != h {
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
			}
		}
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	check := func(f float32) {
		t.Helper()
		if got, want := F32ToF16(f), refF32ToF16(f); got != want {
			t.Fatalf("F32ToF16(%g [%#08x]) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	// Midpoints and their neighbours between every pair of adjacent halves
	// (ties to even), subnormals included.
	for h := uint16(0); h < 0x7c00; h++ {
		mid := float32((halfValue(h) + halfValue(h+1)) / 2)
		check(mid)
		check(-mid)
		check(math.Nextafter32(mid, 0))
		check(math.Nextafter32(mid, 1e9))
	}
	for _, f := range []float32{0, float32(math.Copysign(0, -1)), 65504, 65519.99, 65520, 1e6, -1e6,
		float32(math.Inf(1)), float32(math.Inf(-1)), 5.96e-8, 2.98e-8, 2.9802322e-08, 2.9802326e-08, 1e-10,
		math.SmallestNonzeroFloat32, math.MaxFloat32} {
		check(f)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		check(math.Float32frombits(r.Uint32()))
	}
	if got := F32ToF16(float32(math.NaN())); got&0x7fff != 0x7e00 {
		t.Fatalf("F32ToF16(NaN) = %#04x, want 0x7e00", got)
	}
}

package neon

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestElementwisePaths compares each path's GELU, SiLU and Softmax with
// the float64 twins: random data at several scales, extremes (±0, ±100,
// ±1e30, tiny values, -Inf in softmax) and every tail length. Bound for
// GELU and SiLU: 2e-6 relative plus 1e-14*(1+|x|) absolute, the
// twin's own error where 1+tanh(z) cancels in float64 (x < -7: the
// kernels, which compute x/(1+exp(-2z)), are the more accurate there).
// Softmax: 2e-6 of the largest output plus 1e-30.
func TestElementwisePaths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(61, 62))
		var inputs [][]float32
		for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 197, 1001} {
			for _, scale := range []float32{1e-3, 1, 4, 30} {
				inputs = append(inputs, randVec(r, n, scale))
			}
		}
		extreme := []float32{0, float32(math.Copysign(0, -1)), 100, -100, 1e30, -1e30, 1e-30, -1e-30, 9, -9, 20, -20, 87, -87, 88.5, -88.5, 89, -89, 0.5, -0.5}
		inputs = append(inputs, extreme)
		for i, x := range inputs {
			name := fmt.Sprintf("input %d (n=%d)", i, len(x))
			for _, f := range []struct {
				name      string
				got, want func([]float32)
			}{
				{"GELUTanh", k.gelu, geluTanhGeneric},
				{"SiLU", k.silu, siluGeneric},
			} {
				got := append([]float32(nil), x...)
				want := append([]float32(nil), x...)
				f.got(got)
				f.want(want)
				for j := range got {
					if d := math.Abs(float64(got[j] - want[j])); d > 2e-6*math.Abs(float64(want[j]))+1e-14*(1+math.Abs(float64(x[j]))) || math.IsNaN(float64(got[j])) {
						t.Fatalf("%s %s[%d] (x=%g) = %g, twin %g", name, f.name, j, x[j], got[j], want[j])
					}
				}
			}
			if math.Abs(float64(x[0])) > 1e20 {
				continue // softmax of ±1e30 is tested through the masked cases
			}
			got := append([]float32(nil), x...)
			want := append([]float32(nil), x...)
			if i%3 == 0 && len(got) > 2 {
				got[1], want[1] = float32(math.Inf(-1)), float32(math.Inf(-1)) // masked entry
			}
			k.softmax(got)
			softmaxGeneric(want)
			var top float32
			for _, v := range want {
				top = max(top, v)
			}
			for j := range got {
				if d := math.Abs(float64(got[j] - want[j])); d > 2e-6*float64(top)+1e-30 || math.IsNaN(float64(got[j])) {
					t.Fatalf("%s Softmax[%d] = %g, twin %g", name, j, got[j], want[j])
				}
			}
		}
		// Fully masked rows stay zero.
		m := []float32{float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))}
		k.softmax(m)
		for _, v := range m {
			if v != 0 {
				t.Fatalf("fully masked softmax = %v", m)
			}
		}
	})
}

// TestNormPaths compares each path's LayerNorm and RMSNorm with the twins:
// the sums are float64 on every path, so the results agree to about one
// float32 rounding (bound 3e-7 relative plus 1e-30), with and without
// weights and biases, in place and not, at every tail length.
func TestNormPaths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(71, 72))
		for _, n := range []int{1, 7, 8, 9, 16, 17, 768, 1001} {
			for _, scale := range []float32{1e-3, 1, 100, 1e6} {
				x := randVec(r, n, scale)
				for i := range x {
					x[i] += scale // a mean far from zero
				}
				w, b := randVec(r, n, 1), randVec(r, n, 1)
				check := func(name string, got, want []float32) {
					t.Helper()
					for i := range got {
						if d := math.Abs(float64(got[i] - want[i])); d > 3e-7*math.Abs(float64(want[i]))+1e-30 || math.IsNaN(float64(got[i])) {
							t.Fatalf("%s n=%d scale=%g: [%d] = %g, twin %g", name, n, scale, i, got[i], want[i])
						}
					}
				}
				for _, wb := range [][2][]float32{{w, b}, {w, nil}, {nil, b}, {nil, nil}} {
					got, want := make([]float32, n), make([]float32, n)
					k.layerNorm(got, x, wb[0], wb[1], 1e-6)
					layerNormGeneric(want, x, wb[0], wb[1], 1e-6)
					check("LayerNorm", got, want)
					got = append([]float32(nil), x...)
					k.layerNorm(got, got, wb[0], wb[1], 1e-5) // in place
					layerNormGeneric(want, x, wb[0], wb[1], 1e-5)
					check("LayerNorm in place", got, want)
					got = make([]float32, n)
					k.rmsNorm(got, x, wb[0], 1e-6)
					rmsNormGeneric(want, x, wb[0], 1e-6)
					check("RMSNorm", got, want)
				}
			}
		}
	})
}

// TestExpSumPaths compares each path's ExpSum (exp(x - m) in place and the
// sum) with the twin, -Inf entries included, at every tail length.
func TestExpSumPaths(t *testing.T) {
	forEachPath(t, func(t *testing.T, k *kernelSet) {
		r := rand.New(rand.NewPCG(63, 64))
		for _, n := range []int{0, 1, 3, 4, 7, 8, 9, 31, 1024} {
			x := randVec(r, n, 10)
			if n > 2 {
				x[1] = float32(math.Inf(-1))
			}
			m := float32(math.Inf(-1))
			for _, v := range x {
				m = max(m, v)
			}
			got, want := append([]float32(nil), x...), append([]float32(nil), x...)
			gs, ws := k.expSum(got, m), softmaxExpGeneric(want, m)
			if d := math.Abs(float64(gs - ws)); d > 2e-6*math.Abs(float64(ws))+1e-30 {
				t.Fatalf("%s n=%d: sum %g, twin %g", k.path, n, gs, ws)
			}
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 2e-6*float64(want[i])+1e-37 {
					t.Fatalf("%s n=%d: x[%d] = %g, twin %g", k.path, n, i, got[i], want[i])
				}
			}
		}
	})
}

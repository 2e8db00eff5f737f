package neon

import (
	"math"
	"math/rand/v2"
	"testing"
)

func closeTo(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if e := math.Abs(float64(got[i]) - want[i]); e > tol*(1+math.Abs(want[i])) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %g, want %g", name, i, got[i], want[i])
		}
	}
}

func TestElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 3, 8, 17, 768, 1001} {
		x := randVec(r, n, 2)
		w := randVec(r, n, 1)
		b := randVec(r, n, 1)

		var mean, v float64
		for _, e := range x {
			mean += float64(e)
		}
		mean /= float64(n)
		for _, e := range x {
			v += (float64(e) - mean) * (float64(e) - mean)
		}
		v /= float64(n)
		want := make([]float64, n)
		for i := range x {
			want[i] = (float64(x[i])-mean)/math.Sqrt(v+1e-6)*float64(w[i]) + float64(b[i])
		}
		got := append([]float32(nil), x...)
		LayerNorm(got, got, w, b, 1e-6) // in place
		closeTo(t, "LayerNorm", got, want, 1e-5)

		var ms float64
		for _, e := range x {
			ms += float64(e) * float64(e)
		}
		ms /= float64(n)
		for i := range x {
			want[i] = float64(x[i]) / math.Sqrt(ms+1e-6) * float64(w[i])
		}
		got = make([]float32, n)
		RMSNorm(got, x, w, 1e-6)
		closeTo(t, "RMSNorm", got, want, 1e-5)

		for i, e := range x {
			y := float64(e)
			want[i] = 0.5 * y * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(y+0.044715*y*y*y)))
		}
		got = append(got[:0], x...)
		GELUTanh(got)
		closeTo(t, "GELUTanh", got, want, 1e-6)

		for i, e := range x {
			want[i] = float64(e) / (1 + math.Exp(-float64(e)))
		}
		got = append(got[:0], x...)
		SiLU(got)
		closeTo(t, "SiLU", got, want, 1e-6)

		var sum float64
		for i, e := range x {
			want[i] = math.Exp(float64(e) + 50) // shift must not matter
			sum += want[i]
		}
		for i := range want {
			want[i] /= sum
		}
		got = append(got[:0], x...)
		for i := range got {
			got[i] += 50
		}
		Softmax(got)
		closeTo(t, "Softmax", got, want, 1e-5)

		var dot float64
		for i := range x {
			dot += float64(x[i]) * float64(w[i])
			want[i] = float64(b[i]) + 0.25*float64(x[i])
		}
		if d := Dot(x, w); math.Abs(float64(d)-dot) > 1e-5*float64(n) {
			t.Fatalf("Dot = %g, want %g", d, dot)
		}
		got = append(got[:0], b...)
		Axpy(got, 0.25, x)
		closeTo(t, "Axpy", got, want, 1e-6)

		got = make([]float32, n)
		Add(got, x, w)
		for i := range x {
			want[i] = float64(x[i] + w[i])
		}
		closeTo(t, "Add", got, want, 0)
		Mul(got, x, w)
		for i := range x {
			want[i] = float64(x[i] * w[i])
		}
		closeTo(t, "Mul", got, want, 0)
		copy(got, x)
		Scale(got, 3)
		for i := range x {
			want[i] = float64(x[i] * 3)
		}
		closeTo(t, "Scale", got, want, 0)
	}
}

func TestSoftmaxMasked(t *testing.T) {
	inf := float32(math.Inf(-1))
	x := []float32{inf, 0, inf, 0}
	Softmax(x)
	if x[0] != 0 || x[2] != 0 || x[1] != 0.5 || x[3] != 0.5 {
		t.Fatalf("Softmax with -Inf = %v", x)
	}
	y := []float32{inf, inf}
	Softmax(y)
	if y[0] != 0 || y[1] != 0 {
		t.Fatalf("Softmax of all -Inf = %v, want zeros", y)
	}
}

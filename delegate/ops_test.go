package delegate

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// runGraph calibrates g on inputs, writes it as an int8 .tflite, runs it in
// TFLite on the same inputs and returns TFLite's (dequantized) output with
// the float graph's.
func runGraph(t *testing.T, l *Library, g *graph, input []float32) (got, want []float32) {
	t.Helper()
	v, err := g.eval(nil, input)
	if err != nil {
		t.Fatal(err)
	}
	g.observe(v)
	if err := g.quantize(); err != nil {
		t.Fatal(err)
	}
	data, err := g.marshal("test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "g.tflite")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := l.LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	it, err := l.NewInterpreter(m, InterpreterOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if err := it.Inputs()[0].SetReal(input); err != nil {
		t.Fatal(err)
	}
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	got, err = it.Outputs()[0].Real()
	if err != nil {
		t.Fatal(err)
	}
	return got, v[g.outputs[0]]
}

func randVec(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * scale
	}
	return v
}

// TestOpsInt8 runs each operator the exporter uses, alone, through TFLite's
// int8 kernels and compares with the float graph: the result must be
// within a few output quantization steps.
func TestOpsInt8(t *testing.T) {
	l := openLib(t)
	r := rand.New(rand.NewPCG(1, 2))
	const n, d = 12, 32
	cases := []struct {
		name  string
		build func(g *graph, x int) int
		steps float64
	}{
		{"fc", func(g *graph, x int) int {
			w := g.constant("w", roleWeight, randVec(r, 16*d, 0.2), 16, d)
			b := g.constant("b", roleBias, randVec(r, 16, 0.5), 16)
			return g.fc("y", x, w, b)
		}, 3},
		{"fc-activation-weights", func(g *graph, x int) int {
			// An activation as the weights (as Q K^T does): symmetric.
			k := g.binary(opAdd, "k", x, g.constant("c", roleConst, randVec(r, d, 1), 1, d))
			g.t[k].symmetric = true
			return g.fc("y", x, k, -1)
		}, 3},
		{"add-broadcast", func(g *graph, x int) int {
			return g.binary(opAdd, "y", x, g.constant("c", roleConst, randVec(r, d, 1), 1, d))
		}, 2},
		{"sub-mean", func(g *graph, x int) int {
			return g.binary(opSub, "y", x, g.mean("m", x))
		}, 2},
		{"mul-rows", func(g *graph, x int) int {
			return g.binary(opMul, "y", x, g.mean("m", x))
		}, 2},
		{"mul-square", func(g *graph, x int) int { return g.binary(opMul, "y", x, x) }, 2},
		{"l2norm", func(g *graph, x int) int { return g.l2norm("y", x) }, 2},
		{"softmax", func(g *graph, x int) int { return g.softmax("y", x) }, 2},
		{"logistic", func(g *graph, x int) int { return g.logistic("y", x) }, 2},
		{"transpose", func(g *graph, x int) int { return g.transpose("y", x) }, 1},
		{"concat", func(g *graph, x int) int {
			return g.concat("y", x, g.binary(opAdd, "x2", x, x))
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &graph{}
			x := g.activation("x", n, d)
			g.inputs = []int{x}
			y := c.build(g, x)
			g.outputs = []int{y}
			in := randVec(r, n*d, 1.5)
			got, want := runGraph(t, l, g, in)
			if len(got) != len(want) {
				t.Fatalf("%d values, want %d", len(got), len(want))
			}
			step := float64(g.t[y].q.scale)
			worst := 0.0
			for i := range got {
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
			}
			t.Logf("max abs error %.4g = %.2f output steps", worst, worst/step)
			if worst > c.steps*step {
				t.Errorf("max abs error %.4g is %.2f output steps, want <= %g", worst, worst/step, c.steps)
			}
		})
	}
}

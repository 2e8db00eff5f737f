package delegate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
)

// TestTruncatedModel: every cut of an exported model is refused by name.
func TestTruncatedModel(t *testing.T) {
	l := openLib(t)
	m := tinyModel(t, "pali3_tiny_a", neon.Q8_0)
	data, err := os.ReadFile(exportTiny(t, m, 2))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cut.tflite")
	for _, n := range []int{8, 64, 1000, len(data) / 2, len(data) - 100, len(data) - 1} {
		os.WriteFile(p, data[:n], 0o644)
		mm, err := l.LoadModel(p)
		if err == nil {
			mm.Close()
			t.Fatalf("a model cut to %d of %d bytes loaded", n, len(data))
		}
		if !strings.Contains(err.Error(), "not a valid TFLite model") {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

// FuzzModelFile hands mutated exported models to the library through the
// binding: each is refused with an error, or builds and (when small) runs;
// none may crash.
//
//	go test -run - -fuzz FuzzModelFile -fuzztime 60s ./delegate/
func FuzzModelFile(f *testing.F) {
	l := openLib(f)
	m := tinyModel(f, "pali3_tiny_b", neon.Q8_0)
	data, err := os.ReadFile(exportTiny(f, m, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/3])
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.tflite")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		mm, err := l.LoadModel(p)
		if err != nil {
			return
		}
		defer mm.Close()
		it, err := l.NewInterpreter(mm, InterpreterOptions{Threads: 1})
		if err != nil {
			return
		}
		defer it.Close()
		// Run only models whose inputs and outputs stay small: a mutated
		// shape can ask for hours of arithmetic, which is not a crash.
		for _, ts := range [][]*Tensor{it.Inputs(), it.Outputs()} {
			for _, x := range ts {
				if x.ByteSize() > 1<<16 {
					return
				}
			}
		}
		for _, in := range it.Inputs() {
			if n := in.ByteSize(); n > 0 {
				in.CopyFrom(make([]byte, n))
			}
		}
		it.Invoke()
	})
}

// FuzzCheckModel: the Go-side model check never panics, and accepts the
// exported model.
func FuzzCheckModel(f *testing.F) {
	g := &graph{}
	x := g.activation("x", 2, 4)
	g.inputs = []int{x}
	y := g.fc("y", x, g.constant("w", roleWeight, make([]float32, 12), 3, 4), g.constant("b", roleBias, make([]float32, 3), 3))
	g.outputs = []int{g.softmax("p", y)}
	v, err := g.eval(nil, make([]float32, 8))
	if err != nil {
		f.Fatal(err)
	}
	g.observe(v)
	if err := g.quantize(); err != nil {
		f.Fatal(err)
	}
	data, err := g.marshal("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	if err := checkModel(data); err != nil {
		f.Fatalf("exported model refused: %v", err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		// checkModel turns every panic into an error; its own bounds
		// checks panic with their own messages, so a Go runtime error
		// (index out of range, nil dereference) is a bug in the checker.
		if err := checkModel(b); err != nil && strings.Contains(err.Error(), "runtime error") {
			t.Fatal(err)
		}
	})
}

//go:build hwtest

package hwtests

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/palid/palid/neon"
	"golang.org/x/sys/cpu"
)

// The kernel checks run everywhere (under qemu too): they need no
// hardware but the CPU. The neon package's own tests (neon.test, which
// hwtests/run.sh also runs on the device) compare every runnable path
// with its Go twin kernel by kernel; these compare what dispatch chose on
// this CPU, through the public API, with a float64 product, and time it.

// kernelPaths lists the kernel paths of the neon package, best last per
// architecture, with the CPU features each needs (as neon's dispatch
// reads them from golang.org/x/sys/cpu).
var kernelPaths = map[string][]struct {
	path string
	can  bool
}{
	"arm64": {
		{"generic", true},
		{"asimd", cpu.ARM64.HasASIMD},
		{"sdot", cpu.ARM64.HasASIMDDP},
		{"smmla", cpu.ARM64.HasASIMDDP && cpu.ARM64.HasI8MM},
	},
	"amd64": {
		{"generic", true},
		{"avx2", cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C},
		{"avx512vnni", cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C &&
			cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI},
	},
}

// wantPath is the best kernel path this CPU can run.
func wantPath() string {
	best := "generic"
	for _, p := range kernelPaths[goruntime.GOARCH] {
		if p.can {
			best = p.path
		}
	}
	return best
}

// TestKernelDispatch checks that dispatch uses the best path this CPU can
// run, as golang.org/x/sys/cpu reports its features.
func TestKernelDispatch(t *testing.T) {
	got, want := neon.KernelPath(), wantPath()
	t.Logf("%s/%s: path %s, kernels %v", goruntime.GOOS, goruntime.GOARCH, got, neon.Kernels())
	if goruntime.GOARCH == "arm64" {
		t.Logf("cpu: asimd=%v asimddp=%v i8mm=%v sve=%v fphp=%v", cpu.ARM64.HasASIMD,
			cpu.ARM64.HasASIMDDP, cpu.ARM64.HasI8MM, cpu.ARM64.HasSVE, cpu.ARM64.HasFPHP)
	}
	if got != want {
		t.Fatalf("dispatch chose %q, the best path this CPU can run is %q (a new path? add it to kernelPaths)", got, want)
	}
	if len(neon.Kernels()) == 0 {
		t.Fatal("neon.Kernels() is empty")
	}
}

// matMulCase is one MatMul shape of the reference check.
type matMulCase struct {
	rows, cols, tokens int
}

// Shapes cover the tile edges: rows not a multiple of the 8-row groups or
// the 2-row pairs, one token (decode), a few tokens, more than a token
// block, and a full ViT-B/16 row width.
var matMulCases = []matMulCase{
	{1, 32, 1}, {7, 64, 1}, {37, 96, 3}, {64, 256, 5}, {130, 128, 17}, {33, 768, 70}, {768, 768, 2},
}

// TestKernelsMatchReference runs MatMul on the dispatched path for every
// weight type, packed and unpacked, one thread and every core, and
// compares it with a float64 product of the same operands (for quantized
// weights: the activations quantized to Q8_0 first, as ggml does).
func TestKernelsMatchReference(t *testing.T) {
	pools := map[string]*neon.Pool{"1": neon.NewPool(1), "all": neon.NewPool(0)}
	defer pools["1"].Close()
	defer pools["all"].Close()
	for _, typ := range []neon.DType{neon.Q8_0, neon.Q4_0, neon.F16, neon.F32} {
		for _, c := range matMulCases {
			name := fmt.Sprintf("%s/%dx%dx%d", typ, c.rows, c.cols, c.tokens)
			t.Run(name, func(t *testing.T) {
				m, x := operands(typ, c.rows, c.cols, c.tokens, uint64(c.rows*c.cols+c.tokens))
				want, mag := reference(m, x, c.tokens)
				for _, packed := range []bool{false, true} {
					mm := m
					if packed {
						mm = neon.Pack(m)
					}
					for pn, p := range pools {
						out := make([]float32, c.tokens*c.rows)
						p.MatMul(out, mm, x, c.tokens)
						if err := compare(out, want, mag, c.cols); err != nil {
							t.Fatalf("packed=%v threads=%s: %v", packed, pn, err)
						}
					}
				}
			})
		}
	}
}

// TestVectorKernelsMatchReference checks Dot and Axpy (dispatched) against
// float64 at lengths around the vector widths.
func TestVectorKernelsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 1000, 4096} {
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		var want, mag float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
			mag += math.Abs(float64(a[i]) * float64(b[i]))
		}
		if got := neon.Dot(a, b); math.Abs(float64(got)-want) > 1e-5*mag+1e-6 {
			t.Errorf("Dot n=%d: %v, want %v", n, got, want)
		}
		y := append([]float32(nil), b...)
		neon.Axpy(y, 0.75, a)
		for i := range y {
			w := float64(b[i]) + 0.75*float64(a[i])
			if math.Abs(float64(y[i])-w) > 1e-6*(math.Abs(float64(b[i]))+math.Abs(float64(a[i])))+1e-7 {
				t.Fatalf("Axpy n=%d: y[%d] = %v, want %v", n, i, y[i], w)
			}
		}
	}
}

// operands returns a random rows x cols matrix of type typ and tokens rows
// of activations.
func operands(typ neon.DType, rows, cols, tokens int, seed uint64) (neon.Matrix, []float32) {
	r := rand.New(rand.NewPCG(seed, uint64(typ)))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	data := make([]byte, rows*neon.RowBytes(typ, cols))
	neon.Quantize(typ, data, w)
	x := make([]float32, tokens*cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return neon.Matrix{Type: typ, Rows: rows, Cols: cols, Data: data}, x
}

// reference is MatMul in float64 from the dequantized weights; mag holds,
// per output, the sum of the products' magnitudes (the error scale).
func reference(m neon.Matrix, x []float32, tokens int) (want, mag []float64) {
	w := make([]float32, m.Rows*m.Cols)
	neon.Dequantize(m.Type, w, m.Data)
	xs := append([]float32(nil), x...)
	if m.Type == neon.Q8_0 || m.Type == neon.Q4_0 {
		q := make([]byte, neon.RowBytes(neon.Q8_0, m.Cols))
		for t := range tokens {
			row := xs[t*m.Cols : (t+1)*m.Cols]
			neon.Quantize(neon.Q8_0, q, row)
			neon.Dequantize(neon.Q8_0, row, q)
		}
	}
	want = make([]float64, tokens*m.Rows)
	mag = make([]float64, tokens*m.Rows)
	for t := range tokens {
		for r := range m.Rows {
			var s, a float64
			for c := range m.Cols {
				p := float64(w[r*m.Cols+c]) * float64(xs[t*m.Cols+c])
				s += p
				a += math.Abs(p)
			}
			want[t*m.Rows+r], mag[t*m.Rows+r] = s, a
		}
	}
	return want, mag
}

// compare checks got against want within the rounding a float32
// accumulation allows. A wrong block or a wrong scale costs on the order
// of mag/sqrt(cols/32), far above it.
func compare(got []float32, want, mag []float64, cols int) error {
	// float32 sums of products (F32, F16) or of per-block int32 sums
	// times scales: a random-walk rounding error of a few ulps per term.
	tol := 1e-6 + 4e-7*math.Sqrt(float64(cols))
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*mag[i]+1e-5 || math.IsNaN(float64(got[i])) {
			return fmt.Errorf("out[%d] = %v, want %v (off by %.3g, allowed %.3g)", i, got[i], want[i], d, tol*mag[i]+1e-5)
		}
	}
	return nil
}

// BenchmarkMatMul times MatMul on the dispatched path at the shapes of
// neon.BenchShapes, for every weight type, on one core and on all of them.
// Run on the device with hwtests/run.sh or
// go test -tags hwtest -run '^$' -bench MatMul ./hwtests/.
func BenchmarkMatMul(b *testing.B) {
	for _, threads := range []int{1, goruntime.NumCPU()} {
		p := neon.NewPool(threads)
		for _, s := range neon.BenchShapes {
			for _, typ := range []neon.DType{neon.Q8_0, neon.Q4_0, neon.F16, neon.F32} {
				name := fmt.Sprintf("%s/%s/threads=%d", s.Name, typ, threads)
				b.Run(name, func(b *testing.B) {
					m, x := operands(typ, s.Rows, s.Cols, s.Tokens, 7)
					m = neon.Pack(m)
					out := make([]float32, s.Tokens*s.Rows)
					b.SetBytes(int64(len(m.Data)))
					for b.Loop() {
						p.MatMul(out, m, x, s.Tokens)
					}
					flops := 2 * float64(s.Rows) * float64(s.Cols) * float64(s.Tokens)
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
		p.Close()
	}
}

// BenchmarkKernelTable runs neon.BenchmarkKernels once on every core, the
// dispatched path against its Go twin (and the cold decode shapes against
// a plain copy), logs the table and reports the speed-up over the twin at
// each shape. With PALID_HWTEST_REPORTS set to a directory the table is
// also written there as kernels.json.
func BenchmarkKernelTable(b *testing.B) {
	p := neon.NewPool(0)
	defer p.Close()
	var res []neon.KernelResult
	for b.Loop() {
		var err error
		res, err = neon.BenchmarkKernels(context.Background(), p, 300*time.Millisecond, true)
		if err != nil {
			b.Fatal(err)
		}
	}
	twin := map[string]float64{}
	for _, r := range res {
		if r.Kernel == "matmul" && r.Path == "generic" {
			twin[r.Shape+"/"+r.Type] = r.NsPerOp
		}
	}
	b.Logf("%d threads, path %s", p.Threads(), neon.KernelPath())
	for _, r := range res {
		b.Logf("%-8s %-5s %-14s %-17s cold=%-5v %8.1f us %7.2f GFLOP/s %6.2f GB/s copy=%.2f",
			r.Kernel, r.Type, r.Shape, r.Path, r.Cold, r.NsPerOp/1e3, r.GFLOPS, r.GBps, r.CopyRatio)
		if g, ok := twin[r.Shape+"/"+r.Type]; ok && r.Kernel == "matmul" && r.Path != "generic" {
			b.ReportMetric(g/r.NsPerOp, "x-twin-"+r.Shape+"-"+r.Type)
		}
	}
	if dir := os.Getenv("PALID_HWTEST_REPORTS"); dir != "" {
		data, err := json.MarshalIndent(map[string]any{
			"arch": goruntime.GOARCH, "cpus": goruntime.NumCPU(), "threads": p.Threads(),
			"path": neon.KernelPath(), "kernels": neon.Kernels(), "results": res,
		}, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "kernels.json"), data, 0o644)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

package neon

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkTile runs each path's 8-row x 4-token tile kernel on one
// thread with operands hot in L1 (the micro-kernel's own speed).
//
//	go test -run - -bench Tile -benchtime 2s ./neon/
func BenchmarkTile(b *testing.B) {
	for _, typ := range []DType{Q8_0, Q4_0} {
		for _, k := range kernelPaths() {
			b.Run(fmt.Sprintf("%s/%s/K=768", typ, k.path), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				const K = 768
				m, x, _ := benchOperands(typ, 8, K, 4)
				a := getAct(4, K)
				genericKernels.quantAct(a.qs, a.ds, a.sums, x)
				a.setBias(0, 4*a.nb)
				tile := k.tileQ8
				if typ == Q4_0 {
					tile = k.tileQ4
				}
				out := make([]float32, 32)
				c0 := processCPU()
				b.ResetTimer()
				for b.Loop() {
					tile(out, 8, m.packed.data, a, 0, 4, 0, K/qk, false)
				}
				cpu := processCPU() - c0
				flops := 2 * 8 * 4 * K * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu > 0 {
					b.ReportMetric(flops/cpu.Seconds()/1e9, "cpu-GFLOP/s")
				}
			})
		}
	}
}

// BenchmarkElementwise measures GELU, SiLU and Softmax per path on a
// ViT-B/16 MLP activation (197 x 3072) and 197-wide attention rows.
//
//	go test -run - -bench Elementwise ./neon/
func BenchmarkElementwise(b *testing.B) {
	for _, k := range kernelPaths() {
		for _, f := range []struct {
			name string
			fn   func([]float32)
			n    int
		}{{"gelu", k.gelu, 197 * 3072}, {"silu", k.silu, 197 * 3072}, {"softmax197", k.softmax, 197}} {
			b.Run(f.name+"/"+k.path, func(b *testing.B) {
				x := make([]float32, f.n)
				for i := range x {
					x[i] = float32(i%97)/20 - 2
				}
				b.SetBytes(int64(4 * f.n))
				for b.Loop() {
					f.fn(x)
				}
			})
		}
	}
}

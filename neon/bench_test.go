package neon

import (
	"fmt"
	"testing"
)

// BenchmarkMatMul measures GFLOP/s at the shapes of issue 3 (rows x tokens
// x cols = out features x tokens x in features) for the dispatched path
// and the Go twin, weights hot in cache, on a pool of 2 threads.
//
//	go test -run - -bench MatMul -benchtime 2s ./neon/
func BenchmarkMatMul(b *testing.B) {
	p := NewPool(2)
	defer p.Close()
	for _, s := range BenchShapes {
		for _, typ := range []DType{Q8_0, Q4_0, F16, F32} {
			for _, k := range []*kernelSet{kern, genericKernels} {
				if k == genericKernels && kern != genericKernels && s.Tokens > 1 && testing.Short() {
					continue
				}
				b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", typ, s.Rows, s.Tokens, s.Cols, k.path), func(b *testing.B) {
					restore := useKernels(k)
					defer restore()
					m, x, out := benchOperands(typ, s.Rows, s.Cols, s.Tokens)
					b.SetBytes(int64(len(m.Data)))
					b.ResetTimer()
					for b.Loop() {
						p.MatMul(out, m, x, s.Tokens)
					}
					b.ReportMetric(2*float64(s.Rows*s.Cols*s.Tokens)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

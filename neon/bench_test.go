package neon

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time used by the whole process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMatMul measures GFLOP/s at the shapes of issue 3 (rows x tokens
// x cols = out features x tokens x in features) for the dispatched path
// every path this CPU runs (the Go twin too), weights packed (Pack) and hot in cache, on pools of 1
// and 2 threads. Besides wall-clock GFLOP/s it reports cpu-GFLOP/s: flops
// per second of the process's CPU time, which a machine loaded by other
// work distorts far less (it is per core: multiply by the threads).
//
//	go test -run - -bench MatMul -benchtime 2s ./neon/
func BenchmarkMatMul(b *testing.B) {
	for _, threads := range []int{1, 2} {
		p := NewPool(threads)
		for _, s := range BenchShapes {
			for _, typ := range []DType{Q8_0, Q4_0, F16, F32} {
				for _, k := range kernelPaths() {
					if k == genericKernels && kern != genericKernels && s.Tokens > 1 && testing.Short() {
						continue
					}
					b.Run(fmt.Sprintf("%s/%dx%dx%d/%s/threads=%d", typ, s.Rows, s.Tokens, s.Cols, k.path, threads), func(b *testing.B) {
						restore := useKernels(k)
						defer restore()
						m, x, out := benchOperands(typ, s.Rows, s.Cols, s.Tokens)
						b.SetBytes(int64(weightBytes(m)))
						c0 := processCPU()
						b.ResetTimer()
						for b.Loop() {
							p.MatMul(out, m, x, s.Tokens)
						}
						cpu := processCPU() - c0
						flops := 2 * float64(s.Rows*s.Cols*s.Tokens) * float64(b.N)
						b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
						if cpu > 0 {
							b.ReportMetric(flops/cpu.Seconds()/1e9, "cpu-GFLOP/s")
						}
					})
				}
			}
		}
		p.Close()
	}
}

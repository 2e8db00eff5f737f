package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palid/palid/neon"
)

// benchModelDir returns a directory holding a random ViT-B/16 + T5-base
// shaped Q8_0 model, written once and cached under os.TempDir() keyed by a
// hash of its configuration.
func benchModelDir(b *testing.B) string {
	b.Helper()
	c := baseConfig()
	sum := sha256.Sum256([]byte("palid-bench-v1 " + c.key()))
	dir := filepath.Join(os.TempDir(), "palid-bench-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "mmproj.gguf")); err == nil {
		return dir
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "palid-bench-tmp-")
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("writing the benchmark model to %s (once)", dir)
	if err := writeRandomModel(tmp, c, 42); err != nil {
		os.RemoveAll(tmp)
		b.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, err2 := os.Stat(filepath.Join(dir, "mmproj.gguf")); err2 != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// reportCPU adds the process CPU time per operation since start, a
// figure that holds up on a machine shared with other work (ns/op does not).
func reportCPU(b *testing.B, start time.Duration) {
	if c := processCPU(); c > 0 {
		b.ReportMetric(float64((c-start).Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}

func loadBench(b *testing.B) *Model {
	dir := benchModelDir(b)
	m, err := Load(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkEncodeImage is the ViT-B/16 at 224 px plus the projector: one
// frame to 256 visual tokens.
func BenchmarkEncodeImage(b *testing.B) {
	m := loadBench(b)
	img := randomImage(m.ImageSize(), 1)
	ctx := context.Background()
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		if _, err := m.EncodeImage(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEncoderInput is 256 visual tokens and a 16-token prompt (with EOS).
func benchEncoderInput(b *testing.B, m *Model) ([]float32, int) {
	img := randomImage(m.ImageSize(), 1)
	vis, err := m.EncodeImage(context.Background(), img)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int, 16)
	for i := range ids {
		ids[i] = 3 + i
	}
	ids[15] = 1
	d := m.txt.d
	n := len(vis)/d + len(ids)
	x := make([]float32, n*d)
	copy(x, vis)
	m.txt.embed(x[len(vis):], ids)
	return x, n
}

// BenchmarkEncoderPrefill is the T5-base encoder on 256 visual tokens and a
// 16-token prompt, plus the cross-attention K/V of every decoder layer.
func BenchmarkEncoderPrefill(b *testing.B) {
	m := loadBench(b)
	x, n := benchEncoderInput(b, m)
	in := make([]float32, len(x))
	ctx := context.Background()
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		copy(in, x)
		enc, err := m.encode(ctx, in, n)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.newDecoder(ctx, enc, n, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDecodeStep is one greedy decoder step of T5-base (self-attention
// over up to 32 cached tokens, cross-attention over 272 encoder tokens,
// the 32128-wide head).
func BenchmarkDecodeStep(b *testing.B) {
	m := loadBench(b)
	x, n := benchEncoderInput(b, m)
	ctx := context.Background()
	enc, err := m.encode(ctx, x, n)
	if err != nil {
		b.Fatal(err)
	}
	const maxLen = 32
	var dec *decoder
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		if i%maxLen == 0 {
			b.StopTimer()
			setup := processCPU()
			if dec, err = m.newDecoder(ctx, enc, n, maxLen); err != nil {
				b.Fatal(err)
			}
			cpu += processCPU() - setup // not part of a step
			b.StartTimer()
		}
		if _, err := dec.step(ctx, []int{0}, []int{5 + i%maxLen}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDecodeStepBeam4 is one decoder step for 4 beams at once.
func BenchmarkDecodeStepBeam4(b *testing.B) {
	m := loadBench(b)
	x, n := benchEncoderInput(b, m)
	ctx := context.Background()
	enc, err := m.encode(ctx, x, n)
	if err != nil {
		b.Fatal(err)
	}
	const maxLen = 32
	var dec *decoder
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		if i%(maxLen-2) == 0 {
			b.StopTimer()
			setup := processCPU()
			if dec, err = m.newDecoder(ctx, enc, n, maxLen); err != nil {
				b.Fatal(err)
			}
			if _, err := dec.step(ctx, []int{0}, []int{0}); err != nil {
				b.Fatal(err)
			}
			if _, err := dec.step(ctx, []int{0, 0, 0, 0}, []int{5, 6, 7, 8}); err != nil {
				b.Fatal(err)
			}
			cpu += processCPU() - setup // not part of a step
			b.StartTimer()
		}
		// Beams swap parents as beam search does.
		if _, err := dec.step(ctx, []int{1, 0, 3, 3}, []int{5, 6, 7, 8}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(4*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// benchAttention runs fn on the self-attention of n tokens with the
// ViT-B/16 / T5-base head layout (12 heads of 64), with T5's relative
// bias when bias is set.
func benchAttention(b *testing.B, fn func(*neon.Pool, attnShape, []attnJob), n int, bias bool) {
	const heads, dh = 12, 64
	pool := neon.NewPool(2)
	defer pool.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	inner := heads * dh
	q, _ := randRows(rng, n, inner, 1)
	k, _ := randRows(rng, n, inner, 1)
	v, _ := randRows(rng, n, inner, 1)
	job := attnJob{q: q, qStride: inner, nq: n, k: k, v: v, kvStride: inner, nk: n,
		out: make([]float32, n*inner), outStride: inner}
	if bias {
		job.bias, _ = randRows(rng, heads, 2*n-1, 1)
		job.nrel, job.relOff = 2*n-1, n-1
	}
	sh := attnShape{heads: heads, dh: dh, scale: 0.125}
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		fn(pool, sh, []attnJob{job})
	}
}

// BenchmarkAttention compares the blocked attention with the first
// version's (attendRef) at the ViT shape (256 tokens, 12 heads of 64)
// and the T5 encoder's (272 tokens with relative bias: one frame; 1040:
// four), on 2 threads.
func BenchmarkAttention(b *testing.B) {
	for _, impl := range []struct {
		name string
		fn   func(*neon.Pool, attnShape, []attnJob)
	}{{"blocked", attendNoWork}, {"reference", attendRef}} {
		b.Run("vit256/"+impl.name, func(b *testing.B) { benchAttention(b, impl.fn, 256, false) })
		b.Run("t5enc272/"+impl.name, func(b *testing.B) { benchAttention(b, impl.fn, 272, true) })
		b.Run("t5enc1040/"+impl.name, func(b *testing.B) { benchAttention(b, impl.fn, 1040, true) })
	}
	b.Run("cross272/transposed", func(b *testing.B) { benchCross(b, true) })
	b.Run("cross272/direct", func(b *testing.B) { benchCross(b, false) })
}

// benchCross is the cross-attention of one greedy decoder step of T5-base
// in all 12 layers: one query against 272 encoder tokens, 12 heads of 64,
// with the keys transposed and the values gathered by head once per
// request (as the decoder keeps them) or read row by row.
func benchCross(b *testing.B, transposed bool) {
	const heads, dh, n, layers = 12, 64, 272, 12
	pool := neon.NewPool(2)
	defer pool.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	inner := heads * dh
	q, _ := randRows(rng, 1, inner, 1)
	k, _ := randRows(rng, n, inner, 1)
	v, _ := randRows(rng, n, inner, 1)
	job := attnJob{q: q, qStride: inner, nq: 1, k: k, v: v, kvStride: inner, nk: n,
		out: make([]float32, inner), outStride: inner}
	if transposed {
		job.kt, job.vh = make([]float32, n*inner), make([]float32, n*inner)
		transposeHeads(pool, job.kt, k, inner, n, heads, dh)
		gatherHeads(pool, job.vh, v, inner, n, heads, dh)
	}
	sh := attnShape{heads: heads, dh: dh, scale: 1}
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		for l := 0; l < layers; l++ {
			attend(pool, sh, []attnJob{job}, nil)
		}
	}
}

// BenchmarkLoad is Load of the ViT-B/16 + T5-base model, packing included
// (the files are in the page cache after the first iteration).
func BenchmarkLoad(b *testing.B) {
	dir := benchModelDir(b)
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		m, err := Load(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

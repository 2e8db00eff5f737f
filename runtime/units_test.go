package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"testing"

	"github.com/palid/palid/neon"
)

func randRows(rng *rand.Rand, n, w int, scale float64) ([]float32, [][]float64) {
	flat := make([]float32, n*w)
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, w)
		for j := range rows[i] {
			v := float32(scale * rng.NormFloat64())
			flat[i*w+j] = v
			rows[i][j] = float64(v)
		}
	}
	return flat, rows
}

func TestAttentionStreamingMatchesFullSoftmax(t *testing.T) {
	pool := neon.NewPool(2)
	defer pool.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		nq, nk, heads, dh int
		qpos              int
		causal, bias      bool
		scale             float32
	}{
		{nq: 40, nk: 40, heads: 3, dh: 8, bias: true, scale: 1},                  // T5 encoder
		{nq: 37, nk: 600, heads: 2, dh: 16, scale: 0.25},                         // several key blocks
		{nq: 1, nk: 300, heads: 4, dh: 8, qpos: 299, bias: true, scale: 1},       // decoder step
		{nq: 45, nk: 45, heads: 2, dh: 8, causal: true, bias: true, scale: 1},    // causal prefill
		{nq: 20, nk: 530, heads: 2, dh: 8, qpos: 510, causal: true, scale: 0.5},  // causal with offset
		{nq: 17, nk: 257, heads: 1, dh: 4, scale: 3},                             // large scores
		{nq: 70, nk: 300, heads: 2, dh: 64, bias: true, scale: 0.125},            // tiles and a direct remainder
		{nq: 5, nk: 129, heads: 3, dh: 16, qpos: 124, causal: true, scale: 1},    // smallest tiled block
		{nq: 3, nk: 3, heads: 2, dh: 8, causal: true, bias: true, scale: 1},      // direct, causal
		{nq: 300, nk: 300, heads: 1, dh: 32, causal: true, bias: true, scale: 1}, // causal, many tiles
	} {
		inner := tc.heads * tc.dh
		qf, q := randRows(rng, tc.nq, inner, 1)
		kf, k := randRows(rng, tc.nk, inner, 1)
		vf, v := randRows(rng, tc.nk, inner, 1)
		job := attnJob{
			q: qf, qStride: inner, nq: tc.nq,
			k: kf, v: vf, kvStride: inner, nk: tc.nk,
			out: make([]float32, tc.nq*inner), outStride: inner,
			qpos: tc.qpos, causal: tc.causal,
		}
		var bias func(h, i, j int) float64
		if tc.bias {
			lo, hi := -(tc.nq + tc.qpos), tc.nk
			nrel := hi - lo + 1
			tab, _ := randRows(rng, tc.heads, nrel, 2)
			job.bias, job.nrel, job.relOff = tab, nrel, -lo
			bias = func(h, i, j int) float64 { return float64(tab[h*nrel+j-(i+tc.qpos)-lo]) }
		}
		var mask func(i, j int) bool
		if tc.causal {
			mask = func(i, j int) bool { return j > i+tc.qpos }
		}
		want := naiveAttention(q, k, v, tc.heads, float64(tc.scale), bias, mask)
		for _, impl := range []struct {
			name string
			fn   func(*neon.Pool, attnShape, []attnJob)
		}{{"blocked", attendNoWork}, {"reference", attendRef}, {"transposed", attendTransposed}} {
			job.out = make([]float32, tc.nq*inner)
			impl.fn(pool, attnShape{heads: tc.heads, dh: tc.dh, scale: tc.scale}, []attnJob{job})
			for i := range want {
				if d := relDiff(job.out[i*inner:(i+1)*inner], want[i]); d > 2e-5 {
					t.Fatalf("%s %+v: query %d differs by %.2g", impl.name, tc, i, d)
				}
			}
		}
	}
}

// attendNoWork is attend without kept buffers.
func attendNoWork(p *neon.Pool, sh attnShape, jobs []attnJob) { attend(p, sh, jobs, nil) }

// attendTransposed is attend on jobs that come with transposed keys and
// per-head values only (as the decoder's cross-attention), which run tiled whatever
// their number of queries.
func attendTransposed(p *neon.Pool, sh attnShape, jobs []attnJob) {
	for i := range jobs {
		j := &jobs[i]
		inner := sh.heads * sh.dh
		j.kt, j.vh = make([]float32, j.nk*inner), make([]float32, j.nk*inner)
		transposeHeads(p, j.kt, j.k, j.kvStride, j.nk, sh.heads, sh.dh)
		gatherHeads(p, j.vh, j.v, j.kvStride, j.nk, sh.heads, sh.dh)
		j.k, j.v = nil, nil
	}
	attend(p, sh, jobs, nil)
}

func TestAttentionManyJobs(t *testing.T) {
	// Several jobs of different sizes in one call (decoder beams).
	pool := neon.NewPool(2)
	defer pool.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	var jobs []attnJob
	var wants [][][]float64
	for b := 0; b < 4; b++ {
		nk := 1 + 70*b
		qf, q := randRows(rng, 1, 32, 1)
		kf, k := randRows(rng, nk, 32, 1)
		vf, v := randRows(rng, nk, 32, 1)
		jobs = append(jobs, attnJob{q: qf, qStride: 32, nq: 1, k: kf, v: vf, kvStride: 32, nk: nk, out: make([]float32, 32), outStride: 32})
		wants = append(wants, naiveAttention(q, k, v, 4, 1, nil, nil))
	}
	attend(pool, attnShape{heads: 4, dh: 8, scale: 1}, jobs, nil)
	for b := range jobs {
		if d := relDiff(jobs[b].out, wants[b][0]); d > 2e-5 {
			t.Fatalf("job %d differs by %.2g", b, d)
		}
	}
}

// torchBuckets are Hugging Face's _relative_position_bucket computed by
// PyTorch 1.13 over relative positions -300..300: each run starts at the
// given relative position and holds the given bucket until the next.
var torchBuckets = []struct {
	bidirectional    bool
	buckets, maxDist int
	runs             [][2]int
}{
	{true, 32, 128, [][2]int{{-300, 15}, {-90, 14}, {-63, 13}, {-45, 12}, {-31, 11}, {-22, 10}, {-15, 9}, {-11, 8}, {-7, 7}, {-6, 6}, {-5, 5}, {-4, 4}, {-3, 3}, {-2, 2}, {-1, 1}, {0, 0}, {1, 17}, {2, 18}, {3, 19}, {4, 20}, {5, 21}, {6, 22}, {7, 23}, {8, 24}, {12, 25}, {16, 26}, {23, 27}, {32, 28}, {46, 29}, {64, 30}, {91, 31}}},
	{true, 8, 12, [][2]int{{-300, 3}, {-4, 2}, {-1, 1}, {0, 0}, {1, 5}, {2, 6}, {5, 7}}},
	{true, 64, 256, [][2]int{{-300, 31}, {-215, 30}, {-181, 29}, {-152, 28}, {-127, 27}, {-107, 26}, {-90, 25}, {-76, 24}, {-63, 23}, {-53, 22}, {-45, 21}, {-38, 20}, {-31, 19}, {-26, 18}, {-22, 17}, {-19, 16}, {-15, 15}, {-14, 14}, {-13, 13}, {-12, 12}, {-11, 11}, {-10, 10}, {-9, 9}, {-8, 8}, {-7, 7}, {-6, 6}, {-5, 5}, {-4, 4}, {-3, 3}, {-2, 2}, {-1, 1}, {0, 0}, {1, 33}, {2, 34}, {3, 35}, {4, 36}, {5, 37}, {6, 38}, {7, 39}, {8, 40}, {9, 41}, {10, 42}, {11, 43}, {12, 44}, {13, 45}, {14, 46}, {15, 47}, {16, 48}, {20, 49}, {23, 50}, {27, 51}, {32, 52}, {39, 53}, {46, 54}, {54, 55}, {64, 56}, {77, 57}, {91, 58}, {108, 59}, {128, 60}, {153, 61}, {182, 62}, {216, 63}}},
	{false, 32, 128, [][2]int{{-300, 31}, {-112, 30}, {-98, 29}, {-86, 28}, {-76, 27}, {-66, 26}, {-58, 25}, {-51, 24}, {-45, 23}, {-39, 22}, {-34, 21}, {-30, 20}, {-26, 19}, {-23, 18}, {-20, 17}, {-18, 16}, {-15, 15}, {-14, 14}, {-13, 13}, {-12, 12}, {-11, 11}, {-10, 10}, {-9, 9}, {-8, 8}, {-7, 7}, {-6, 6}, {-5, 5}, {-4, 4}, {-3, 3}, {-2, 2}, {-1, 1}, {0, 0}}},
	{false, 8, 12, [][2]int{{-300, 7}, {-9, 6}, {-6, 5}, {-5, 4}, {-3, 3}, {-2, 2}, {-1, 1}, {0, 0}}},
}

func TestRelativeBucketMatchesTorch(t *testing.T) {
	for _, tc := range torchBuckets {
		for r := -300; r <= 300; r++ {
			want := -1
			for _, run := range tc.runs {
				if run[0] <= r {
					want = run[1]
				}
			}
			if got := relativeBucket(r, tc.bidirectional, tc.buckets, tc.maxDist); got != want {
				t.Fatalf("bucket(%d, bidirectional=%v, %d, %d) = %d, torch %d", r, tc.bidirectional, tc.buckets, tc.maxDist, got, want)
			}
		}
	}
}

func TestRelativeBucketMatchesTranscription(t *testing.T) {
	for _, cfg := range [][2]int{{32, 128}, {8, 12}, {64, 256}, {16, 1000}, {6, 10}} {
		for _, bi := range []bool{true, false} {
			for r := -5000; r <= 5000; r++ {
				got := relativeBucket(r, bi, cfg[0], cfg[1])
				if want := hfBucket(r, bi, cfg[0], cfg[1]); got != want {
					t.Fatalf("bucket(%d, %v, %v) = %d, transcription %d", r, bi, cfg, got, want)
				}
				if got < 0 || got >= cfg[0] {
					t.Fatalf("bucket(%d, %v, %v) = %d out of range", r, bi, cfg, got)
				}
			}
		}
	}
}

// naiveBicubic resizes with the Keys cubic kernel evaluated at distances,
// as a 2-D sum in float64 with the source indices clamped.
func naiveBicubic(src []float64, ih, iw, d, oh, ow int) []float64 {
	const a = -0.75
	kern := func(x float64) float64 {
		x = math.Abs(x)
		switch {
		case x <= 1:
			return (a+2)*x*x*x - (a+3)*x*x + 1
		case x < 2:
			return a*x*x*x - 5*a*x*x + 8*a*x - 4*a
		}
		return 0
	}
	clamp := func(i, n int) int { return min(max(i, 0), n-1) }
	out := make([]float64, oh*ow*d)
	for oy := 0; oy < oh; oy++ {
		sy := (float64(oy)+0.5)*float64(ih)/float64(oh) - 0.5
		fy := math.Floor(sy)
		for ox := 0; ox < ow; ox++ {
			sx := (float64(ox)+0.5)*float64(iw)/float64(ow) - 0.5
			fx := math.Floor(sx)
			for c := 0; c < d; c++ {
				s := 0.0
				for dy := -1; dy <= 2; dy++ {
					for dx := -1; dx <= 2; dx++ {
						y, x := int(fy)+dy, int(fx)+dx
						s += kern(sy-float64(y)) * kern(sx-float64(x)) * src[(clamp(y, ih)*iw+clamp(x, iw))*d+c]
					}
				}
				out[(oy*ow+ox)*d+c] = s
			}
		}
	}
	return out
}

func TestBicubicMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range [][4]int{{16, 16, 24, 24}, {16, 16, 8, 8}, {14, 14, 16, 16}, {4, 4, 7, 3}, {3, 5, 1, 1}, {16, 16, 32, 9}} {
		ih, iw, oh, ow := tc[0], tc[1], tc[2], tc[3]
		const d = 5
		src, _ := randRows(rng, ih*iw, d, 1)
		s64 := make([]float64, len(src))
		for i, v := range src {
			s64[i] = float64(v)
		}
		got := bicubicResize(src, ih, iw, d, oh, ow)
		if d := relDiff(got, naiveBicubic(s64, ih, iw, d, oh, ow)); d > 1e-5 {
			t.Errorf("%v: differs from the naive resize by %.2g", tc, d)
		}
	}
}

func TestBicubicMatchesTorch(t *testing.T) {
	// src[y][x][c] = (y*3+x)*0.25 - 1 + 0.1*c + 0.05*x*x on a 3x3 grid,
	// resized by torch.nn.functional.interpolate(bicubic, align_corners=False).
	src := make([]float32, 3*3*2)
	for y := 0; y < 3; y++ {
		for x := 0; x < 3; x++ {
			for c := 0; c < 2; c++ {
				src[(y*3+x)*2+c] = float32(y*3+x)*0.25 - 1 + 0.1*float32(c) + 0.05*float32(x*x)
			}
		}
	}
	for _, tc := range []struct {
		oh, ow int
		want   []float64
	}{
		{5, 4, []float64{-1.0935334, -0.993533313, -0.924050868, -0.824050844, -0.594900429, -0.494900435, -0.343289107, -0.243289039, -0.784532845, -0.684532762, -0.615050375, -0.515050411, -0.285900027, -0.185900003, -0.0342887305, 0.0657112971, -0.271533161, -0.171533167, -0.102050744, -0.00205074041, 0.227099657, 0.327099681, 0.478710979, 0.578710973, 0.241466627, 0.341466635, 0.410949081, 0.510949135, 0.740099549, 0.840099514, 0.991710961, 1.09171081, 0.550466835, 0.6504668, 0.719949305, 0.819949329, 1.0490998, 1.14909971, 1.30071127, 1.40071106}},
		{2, 2, []float64{-0.802539051, -0.702539027, -0.236523449, -0.13652344, 0.410351574, 0.510351598, 0.976367235, 1.07636714}},
	} {
		got := bicubicResize(src, 3, 3, 2, tc.oh, tc.ow)
		for i := range got {
			if math.Abs(float64(got[i])-tc.want[i]) > 1e-6 {
				t.Fatalf("%dx%d: value %d is %.9g, torch %.9g", tc.oh, tc.ow, i, got[i], tc.want[i])
			}
		}
	}
}

// fakeLM is a logits source over a small vocabulary whose next-token
// distribution is a function of the whole sequence so far.
type fakeLM struct {
	vocab int
	table func(seq []int) []float32
	seqs  [][]int
	calls int
}

func (f *fakeLM) step(_ context.Context, parents, tokens []int) ([]float32, error) {
	f.calls++
	var next [][]int
	var out []float32
	for i, p := range parents {
		var prev []int
		if f.seqs != nil {
			prev = f.seqs[p]
		}
		s := append(append([]int(nil), prev...), tokens[i])
		next = append(next, s)
		out = append(out, f.table(s)...)
	}
	f.seqs = next
	return out, nil
}

// logits turns probabilities into logits.
func logits(p ...float64) []float32 {
	out := make([]float32, len(p))
	for i, v := range p {
		out[i] = float32(math.Log(v))
	}
	return out
}

func TestBeamFindsBetterSequenceThanGreedy(t *testing.T) {
	// Vocab: 0 start, 1 EOS, 2 "a", 3 "b". After start, "a" (0.5) beats
	// "b" (0.4); after "a" everything is flat, after "b" EOS is certain.
	// Greedy: a ... ; the best sequence is b EOS (0.4 * 0.99).
	table := func(seq []int) []float32 {
		switch last := seq[len(seq)-1]; {
		case len(seq) == 1:
			return logits(0.05, 0.05, 0.5, 0.4)
		case last == 3:
			return logits(0.0033, 0.99, 0.0033, 0.0034)
		default:
			return logits(0.25, 0.25, 0.25, 0.25)
		}
	}
	greedy, err := search(context.Background(), (&fakeLM{vocab: 4, table: table}).step, 4, 0, 1, 1, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if greedy.tokens[0] != 2 {
		t.Fatalf("greedy %v, want to start with 2", greedy.tokens)
	}
	if !equalInts(greedy.tokens, []int{2, 0, 0, 0, 0}) {
		// After "a" the flat distribution ties: the lowest id (0) wins.
		t.Fatalf("greedy %v, want [2 0 0 0 0]", greedy.tokens)
	}
	lm := &fakeLM{vocab: 4, table: table}
	best, err := search(context.Background(), lm.step, 4, 0, 1, 2, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(best.tokens, []int{3, 1}) {
		t.Fatalf("beam 2 %v, want [3 1]", best.tokens)
	}
	if want := math.Log(0.4) + math.Log(0.99); math.Abs(best.score-want) > 1e-6 {
		t.Fatalf("score %g, want %g", best.score, want)
	}
	if math.Abs(float64(best.logprobs[0])-math.Log(0.4)) > 1e-6 || len(best.logits) != 2 {
		t.Fatalf("logprobs %v, %d logits rows", best.logprobs, len(best.logits))
	}
	// Early stop: once b EOS is finished (score ~-0.93) no alive beam
	// (a then flat: ~-2.08) can beat it.
	if lm.calls != 2 {
		t.Fatalf("%d steps, want 2 (early stop)", lm.calls)
	}
}

// referenceBeam is the procedure of docs/contracts.md written over whole
// sequences: no parents, no caches; every step recomputes each beam's
// distribution from its full sequence.
func referenceBeam(table func([]int) []float32, vocab, k, maxTokens int) ([]int, float64) {
	type hyp struct {
		seq   []int
		score float64
	}
	alive := []hyp{{seq: []int{0}}}
	var fin []hyp
	for step := 0; step < maxTokens && len(alive) > 0; step++ {
		type cand struct {
			beam, tok int
			score     float64
		}
		var cands []cand
		for b, h := range alive {
			lg := table(h.seq)
			mx := math.Inf(-1)
			for _, v := range lg {
				mx = math.Max(mx, float64(v))
			}
			sum := 0.0
			for _, v := range lg {
				sum += math.Exp(float64(v) - mx)
			}
			used := map[int]bool{}
			for n := 0; n < k; n++ {
				bi := -1
				for i, v := range lg {
					if !used[i] && (bi < 0 || v > lg[bi]) {
						bi = i
					}
				}
				used[bi] = true
				cands = append(cands, cand{b, bi, h.score + (float64(lg[bi]) - (mx + math.Log(sum)))})
			}
		}
		// Selection sort by (score desc, beam asc, token asc).
		for i := range cands {
			for j := i + 1; j < len(cands); j++ {
				a, b := cands[i], cands[j]
				if b.score > a.score || (b.score == a.score && (b.beam < a.beam || (b.beam == a.beam && b.tok < a.tok))) {
					cands[i], cands[j] = cands[j], cands[i]
				}
			}
		}
		var next []hyp
		for r, c := range cands {
			if len(next) == k {
				break
			}
			s := append(append([]int(nil), alive[c.beam].seq...), c.tok)
			if c.tok == 1 {
				if r < k {
					fin = append(fin, hyp{s, c.score})
				}
				continue
			}
			next = append(next, hyp{s, c.score})
		}
		alive = next
		if len(fin) >= k {
			break
		}
		if len(fin) > 0 && len(alive) > 0 {
			best := fin[0]
			for _, f := range fin {
				if f.score > best.score {
					best = f
				}
			}
			if best.score >= alive[0].score {
				break
			}
		}
	}
	if len(fin) > 0 {
		best := fin[0]
		for _, f := range fin {
			if f.score > best.score {
				best = f
			}
		}
		return best.seq[1:], best.score
	}
	return alive[0].seq[1:], alive[0].score
}

func TestBeamMatchesReferenceProcedure(t *testing.T) {
	for seed := uint64(0); seed < 60; seed++ {
		const vocab = 7
		// Distributions depend on a hash of the whole sequence; EOS gets
		// more likely as sequences grow so that hypotheses finish.
		table := func(seq []int) []float32 {
			h := seed*0x9e3779b97f4a7c15 + 1
			for _, s := range seq {
				h = (h ^ uint64(s+1)) * 0x100000001b3
			}
			rng := rand.New(rand.NewPCG(h, 7))
			out := make([]float32, vocab)
			for i := range out {
				out[i] = float32(rng.NormFloat64() * 2)
				if rng.IntN(4) == 0 {
					out[i] = float32(math.Round(float64(out[i]))) // ties
				}
			}
			out[1] += float32(len(seq)) * 0.4
			return out
		}
		k := 1 + int(seed%4)
		wantSeq, wantScore := referenceBeam(table, vocab, k, 8)
		got, err := search(context.Background(), (&fakeLM{vocab: vocab, table: table}).step, vocab, 0, 1, k, 8, false)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(got.tokens, wantSeq) || math.Abs(got.score-wantScore) > 1e-9 {
			t.Fatalf("seed %d k %d: %v (%g), reference %v (%g)", seed, k, got.tokens, got.score, wantSeq, wantScore)
		}
	}
}

func TestTopK(t *testing.T) {
	lp := []float64{0.1, 0.5, 0.5, -1, 0.7, 0.5}
	if got := topK(lp, 3); !equalInts(got, []int{4, 1, 2}) {
		t.Fatalf("topK = %v, want [4 1 2]", got)
	}
	if got := topK(lp, 6); !equalInts(got, []int{4, 1, 2, 5, 0, 3}) {
		t.Fatalf("topK = %v", got)
	}
}

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for i := 0; i <= 2000000; i++ {
		x := -float32(i) * 90 / 2000000
		want := math.Exp(float64(x))
		got := float64(expNeg(x))
		if x < -87 {
			if got != 0 {
				t.Fatalf("expNeg(%g) = %g, want 0", x, got)
			}
			continue
		}
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Fatalf("largest relative error %.3g", worst)
	}
	if expNeg(0) != 1 {
		t.Fatalf("expNeg(0) = %g", expNeg(0))
	}
}

func TestAttentionMemoryIsLinear(t *testing.T) {
	// 4112 tokens (16 frames of 256 and a prompt) with 2 heads: a score
	// matrix would be 4112*4112*4 bytes = 68 MB per head. The blocked
	// kernel allocates the transposed keys and values (as large as k and
	// v) and a fixed scratch per work chunk; with an attnWork kept
	// between calls, a second call allocates only the scratch.
	pool := neon.NewPool(2)
	defer pool.Close()
	const heads, dh = 2, 8
	alloc := func(n int, w *attnWork) uint64 {
		rng := rand.New(rand.NewPCG(9, 9))
		qf, _ := randRows(rng, n, heads*dh, 1)
		kf, _ := randRows(rng, n, heads*dh, 1)
		vf, _ := randRows(rng, n, heads*dh, 1)
		job := []attnJob{{q: qf, qStride: heads * dh, nq: n, k: kf, v: vf, kvStride: heads * dh, nk: n,
			out: make([]float32, n*heads*dh), outStride: heads * dh}}
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		attend(pool, attnShape{heads: heads, dh: dh, scale: 1}, job, w)
		goruntime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	for _, n := range []int{1028, 4112} {
		kv := uint64(2 * n * heads * dh * 4) // the transposed k and v
		if a := alloc(n, nil); a > kv+1<<20 {
			t.Errorf("attention over %d tokens allocated %d bytes, want at most %d + 1 MiB", n, a, kv)
		}
		w := &attnWork{}
		alloc(n, w)
		if a := alloc(n, w); a > 1<<20 {
			t.Errorf("attention over %d tokens with kept buffers allocated %d bytes", n, a)
		}
	}
}

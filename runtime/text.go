package runtime

import (
	"context"
	"fmt"
	"math"

	"github.com/palid/palid/neon"
	"github.com/palid/palid/runtime/spm"
)

// textWeights is the UL2/T5 v1.1 encoder-decoder.
type textWeights struct {
	d, ff                int
	encLayers, decLayers int
	heads, dh, inner     int
	eps                  float32
	buckets, maxDist     int
	silu                 bool // gated-silu, else gated-gelu (tanh)
	tied                 bool
	vocab                int

	embd, head       neon.Matrix // head == embd when tied
	encRel, decRel   []float32   // [buckets][heads]
	enc, dec         []t5Layer
	encNorm, decNorm []float32
}

// t5Layer is one block; the cross-attention fields are set in the decoder only.
type t5Layer struct {
	attnNorm       []float32
	q, k, v, o     neon.Matrix
	crossNorm      []float32
	cq, ck, cv, co neon.Matrix
	ffnNorm        []float32
	gate, up, down neon.Matrix
}

func (m *Model) loadText(l *loader) error {
	arch, err := l.f.String("general.architecture")
	if err != nil {
		return l.wrap(err)
	}
	if arch != "t5" {
		return l.errorf("general.architecture is %q, want \"t5\"", arch)
	}
	t := &m.txt
	for _, s := range []struct {
		dst *int
		key string
	}{
		{&t.d, "t5.embedding_length"},
		{&t.ff, "t5.feed_forward_length"},
		{&t.encLayers, "t5.block_count"},
		{&t.decLayers, "t5.decoder_block_count"},
		{&t.heads, "t5.attention.head_count"},
		{&t.dh, "t5.attention.key_length"},
		{&t.buckets, "t5.attention.relative_buckets_count"},
		{&t.maxDist, "t5.attention.relative_max_distance"},
	} {
		if *s.dst, err = l.size(s.key); err != nil {
			return err
		}
	}
	dv, err := l.size("t5.attention.value_length")
	if err != nil {
		return err
	}
	if dv != t.dh {
		return l.errorf("t5.attention.value_length %d differs from key_length %d (not supported)", dv, t.dh)
	}
	if t.buckets < 4 {
		return l.errorf("t5.attention.relative_buckets_count is %d, want at least 4", t.buckets)
	}
	t.inner = t.heads * t.dh
	eps, err := l.f.Float("t5.attention.layer_norm_rms_epsilon")
	if err != nil {
		return l.wrap(err)
	}
	if !(eps >= 0 && eps < 1) {
		return l.errorf("t5.attention.layer_norm_rms_epsilon is %g, want in [0, 1)", eps)
	}
	t.eps = float32(eps)
	proj, err := l.f.String("t5.feed_forward_proj")
	if err != nil {
		return l.wrap(err)
	}
	switch proj {
	case "gated-gelu":
	case "gated-silu":
		t.silu = true
	default:
		return l.errorf("t5.feed_forward_proj is %q, want \"gated-gelu\" or \"gated-silu\"", proj)
	}
	_, hasOutput := l.f.Get("t5.tie_word_embeddings")
	if hasOutput {
		if t.tied, err = l.f.Bool("t5.tie_word_embeddings"); err != nil {
			return l.wrap(err)
		}
	} else {
		_, err := l.f.Tensor("output.weight")
		t.tied = err != nil
	}
	m.start = 0
	if _, ok := l.f.Get("t5.decoder_start_token_id"); ok {
		if m.start, err = l.f.Int("t5.decoder_start_token_id"); err != nil {
			return l.wrap(err)
		}
	}

	// Tokenizer.
	raw, err := l.f.Bytes("palid.tokenizer.spm_model")
	if err != nil {
		return l.wrap(err)
	}
	if m.tok, err = spm.Parse(raw); err != nil {
		return l.errorf("palid.tokenizer.spm_model: %v", err)
	}
	m.eos = 1
	if _, ok := l.f.Get("tokenizer.ggml.eos_token_id"); ok {
		if m.eos, err = l.f.Int("tokenizer.ggml.eos_token_id"); err != nil {
			return l.wrap(err)
		}
	} else if e := m.tok.EOS(); e >= 0 {
		m.eos = e
	}

	// Tensors.
	et, err := l.f.Tensor("token_embd.weight")
	if err != nil {
		return l.wrap(err)
	}
	if len(et.Dims) != 2 || et.Dims[1] == 0 || et.Dims[1] > 1<<24 {
		return l.errorf("tensor token_embd.weight has shape %v, want [%d vocab]", et.Dims, t.d)
	}
	t.vocab = int(et.Dims[1])
	if m.tok.Size() > t.vocab {
		return l.errorf("tokenizer has %d pieces but token_embd.weight only %d rows", m.tok.Size(), t.vocab)
	}
	if m.eos < 0 || m.eos >= t.vocab || m.start < 0 || m.start >= t.vocab {
		return l.errorf("eos id %d or decoder start id %d outside the vocabulary of %d", m.eos, m.start, t.vocab)
	}
	var e errs
	t.embd = e.m(l.matrix("token_embd.weight", t.d, t.vocab))
	if t.tied {
		t.head = t.embd
	} else {
		t.head = e.m(l.matrix("output.weight", t.d, t.vocab))
	}
	t.encRel = e.v(l.floats("enc.blk.0.attn_rel_b.weight", t.heads, t.buckets))
	t.decRel = e.v(l.floats("dec.blk.0.attn_rel_b.weight", t.heads, t.buckets))
	t.encNorm = e.v(l.floats("enc.output_norm.weight", t.d))
	t.decNorm = e.v(l.floats("dec.output_norm.weight", t.d))
	block := func(prefix string, cross bool) t5Layer {
		var b t5Layer
		b.attnNorm = e.v(l.floats(prefix+"attn_norm.weight", t.d))
		b.q = e.m(l.matrix(prefix+"attn_q.weight", t.d, t.inner))
		b.k = e.m(l.matrix(prefix+"attn_k.weight", t.d, t.inner))
		b.v = e.m(l.matrix(prefix+"attn_v.weight", t.d, t.inner))
		b.o = e.m(l.matrix(prefix+"attn_o.weight", t.inner, t.d))
		if cross {
			b.crossNorm = e.v(l.floats(prefix+"cross_attn_norm.weight", t.d))
			b.cq = e.m(l.matrix(prefix+"cross_attn_q.weight", t.d, t.inner))
			b.ck = e.m(l.matrix(prefix+"cross_attn_k.weight", t.d, t.inner))
			b.cv = e.m(l.matrix(prefix+"cross_attn_v.weight", t.d, t.inner))
			b.co = e.m(l.matrix(prefix+"cross_attn_o.weight", t.inner, t.d))
		}
		b.ffnNorm = e.v(l.floats(prefix+"ffn_norm.weight", t.d))
		b.gate = e.m(l.matrix(prefix+"ffn_gate.weight", t.d, t.ff))
		b.up = e.m(l.matrix(prefix+"ffn_up.weight", t.d, t.ff))
		b.down = e.m(l.matrix(prefix+"ffn_down.weight", t.ff, t.d))
		return b
	}
	for i := 0; i < t.encLayers && e.err == nil; i++ {
		t.enc = append(t.enc, block(fmt.Sprintf("enc.blk.%d.", i), false))
	}
	for i := 0; i < t.decLayers && e.err == nil; i++ {
		t.dec = append(t.dec, block(fmt.Sprintf("dec.blk.%d.", i), true))
	}
	if e.err != nil {
		return e.err
	}
	m.info.TextWidth = t.d
	m.info.TextFF = t.ff
	m.info.EncoderLayers = t.encLayers
	m.info.DecoderLayers = t.decLayers
	m.info.TextHeads = t.heads
	m.info.HeadDim = t.dh
	m.info.Vocab = t.vocab
	m.info.FeedForward = proj
	m.info.Tied = t.tied
	m.info.TextType = t.enc[0].q.Type.String()
	return nil
}

// relativeBucket is Hugging Face T5's _relative_position_bucket for one
// relative position (key position minus query position), with its float32
// logarithm and truncation toward zero.
func relativeBucket(rel int, bidirectional bool, numBuckets, maxDistance int) int {
	bucket := 0
	if bidirectional {
		numBuckets /= 2
		if rel > 0 {
			bucket += numBuckets
		}
		if rel < 0 {
			rel = -rel
		}
	} else {
		if rel > 0 {
			rel = 0
		}
		rel = -rel
	}
	maxExact := numBuckets / 2
	if rel < maxExact {
		return bucket + rel
	}
	// torch: log(rp.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact), in float32.
	x := float32(rel) / float32(maxExact)
	lg := float32(math.Log(float64(x)))
	den := float32(math.Log(float64(maxDistance) / float64(maxExact)))
	v := lg / den
	v *= float32(numBuckets - maxExact)
	large := maxExact + int(v)
	if large > numBuckets-1 {
		large = numBuckets - 1
	}
	return bucket + large
}

// relBiasTable expands a [buckets][heads] table to [heads][hi-lo+1]: the
// bias of each head for relative positions lo..hi.
func (t *textWeights) relBiasTable(table []float32, bidirectional bool, lo, hi int) []float32 {
	n := hi - lo + 1
	out := make([]float32, t.heads*n)
	for r := lo; r <= hi; r++ {
		b := relativeBucket(r, bidirectional, t.buckets, t.maxDist)
		for h := 0; h < t.heads; h++ {
			out[h*n+r-lo] = table[b*t.heads+h]
		}
	}
	return out
}

// embed writes the embeddings of ids into dst (len(ids) x d).
func (t *textWeights) embed(dst []float32, ids []int) {
	for i, id := range ids {
		neon.Dequantize(t.embd.Type, dst[i*t.d:(i+1)*t.d], t.embd.Row(id))
	}
}

// rmsRows normalises n rows of x (width d) into dst.
func (m *Model) rmsRows(dst, x, w []float32, n, d int, eps float32) {
	m.pool.Run(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			neon.RMSNorm(dst[i*d:(i+1)*d], x[i*d:(i+1)*d], w, eps)
		}
	})
}

// addInto adds y into x element-wise, in parallel.
func (m *Model) addInto(x, y []float32) {
	const chunk = 4096
	m.pool.Run((len(x)+chunk-1)/chunk, func(lo, hi int) {
		a, b := lo*chunk, min(hi*chunk, len(x))
		neon.Add(x[a:b], x[a:b], y[a:b])
	})
}

// ffn runs T5's gated feed-forward on n rows of norm; the result goes to out.
// gate and up are scratch of n*ff floats.
func (m *Model) ffn(b *t5Layer, out, norm, gate, up []float32, n int) {
	t := &m.txt
	m.pool.MatMul(gate, b.gate, norm, n)
	m.pool.MatMul(up, b.up, norm, n)
	const chunk = 4096
	total := n * t.ff
	m.pool.Run((total+chunk-1)/chunk, func(lo, hi int) {
		a, e := lo*chunk, min(hi*chunk, total)
		g := gate[a:e]
		if t.silu {
			neon.SiLU(g)
		} else {
			neon.GELUTanh(g)
		}
		neon.Mul(g, g, up[a:e])
	})
	m.pool.MatMul(out, b.down, gate, n)
}

// encode runs the T5 encoder on n embedded input rows x (modified in place)
// and returns the final normalised hidden states.
func (m *Model) encode(ctx context.Context, x []float32, n int) ([]float32, error) {
	t := &m.txt
	d, inner := t.d, t.inner
	norm := make([]float32, n*d)
	q := make([]float32, n*inner)
	k := make([]float32, n*inner)
	v := make([]float32, n*inner)
	a := make([]float32, n*inner)
	o := make([]float32, n*d)
	gate := make([]float32, n*t.ff)
	up := make([]float32, n*t.ff)
	bias := t.relBiasTable(t.encRel, true, -(n - 1), n-1)
	var work attnWork
	sh := attnShape{heads: t.heads, dh: t.dh, scale: 1}
	job := []attnJob{{
		q: q, qStride: inner, nq: n,
		k: k, v: v, kvStride: inner, nk: n,
		out: a, outStride: inner,
		bias: bias, nrel: 2*n - 1, relOff: n - 1,
	}}
	for i := range t.enc {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := &t.enc[i]
		m.rmsRows(norm, x, b.attnNorm, n, d, t.eps)
		m.pool.MatMul(q, b.q, norm, n)
		m.pool.MatMul(k, b.k, norm, n)
		m.pool.MatMul(v, b.v, norm, n)
		attend(m.pool, sh, job, &work)
		m.pool.MatMul(o, b.o, a, n)
		m.addInto(x, o)
		m.rmsRows(norm, x, b.ffnNorm, n, d, t.eps)
		m.ffn(b, o, norm, gate, up, n)
		m.addInto(x, o)
	}
	m.rmsRows(norm, x, t.encNorm, n, d, t.eps)
	return norm, nil
}

// decoder is the state of one request's decoding: the cross-attention K/V
// of every layer (shared by all beams) and each beam's self-attention cache.
type decoder struct {
	m    *Model
	nEnc int
	// cross holds per layer the cross-attention job with the encoder's
	// keys, transposed (inner x nEnc), and values, gathered by head (heads
	// x nEnc x dh), for the tiled attention; a step fills in its queries
	// and output. A model whose cross-attention weights are quantized keeps
	// them in half precision (kt16, vh16 instead of kt, vh): a decode step
	// reads them all, and in float32 they are about a seventh of its bytes
	// (T5-base, 272 encoder tokens); the rounding is far below the
	// weights' own.
	cross  []attnJob
	maxLen int
	pos    int         // tokens already in the caches
	caches [][]float32 // per beam: [layer][k|v][maxLen x inner]
	spare  [][]float32
	bias   []float32 // [heads][maxLen]: relative positions -(maxLen-1)..0
	logits []float32

	// Buffers of step, sized for the widest step so far.
	beams                            int
	x, norm, q, k, v, a, o, gate, up []float32
	jobs                             []attnJob
	work                             attnWork
	used                             []bool
	next                             [][]float32
}

// newDecoder computes the cross-attention keys and values of the encoder
// output enc (nEnc x d) once for all steps and beams.
func (m *Model) newDecoder(ctx context.Context, enc []float32, nEnc, maxLen int) (*decoder, error) {
	t := &m.txt
	s := &decoder{m: m, nEnc: nEnc, maxLen: maxLen}
	n := nEnc * t.inner
	tmp := make([]float32, n)
	var scratchKT, scratchVH []float32 // float32 staging of half-precision layers
	for i := range t.dec {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		half := t.dec[i].ck.Type.BlockSize() > 1 && t.dec[i].cv.Type.BlockSize() > 1
		var kt, vh []float32
		switch {
		case !half: // kept: a fresh pair
			kt, vh = make([]float32, n), make([]float32, n)
		case scratchKT == nil:
			scratchKT, scratchVH = make([]float32, n), make([]float32, n)
			fallthrough
		default:
			kt, vh = scratchKT, scratchVH
		}
		m.pool.MatMul(tmp, t.dec[i].ck, enc, nEnc)
		transposeHeads(m.pool, kt, tmp, t.inner, nEnc, t.heads, t.dh)
		m.pool.MatMul(tmp, t.dec[i].cv, enc, nEnc)
		gatherHeads(m.pool, vh, tmp, t.inner, nEnc, t.heads, t.dh)
		j := attnJob{nk: nEnc, kt: kt, vh: vh}
		if half {
			j = attnJob{nk: nEnc, kt16: make([]uint16, n), vh16: make([]uint16, n)}
			toF16(m.pool, j.kt16, kt)
			toF16(m.pool, j.vh16, vh)
		}
		s.cross = append(s.cross, j)
	}
	s.bias = t.relBiasTable(t.decRel, false, -(maxLen - 1), 0)
	s.caches = [][]float32{s.newCache()}
	return s, nil
}

// toF16 converts src to half precision into dst, in chunks over the pool.
func toF16(pool *neon.Pool, dst []uint16, src []float32) {
	const chunk = 1 << 14
	pool.Run((len(src)+chunk-1)/chunk, func(lo, hi int) {
		a, b := lo*chunk, min(hi*chunk, len(src))
		neon.ToF16(dst[a:b], src[a:b])
	})
}

func (s *decoder) newCache() []float32 {
	t := &s.m.txt
	return make([]float32, len(t.dec)*2*s.maxLen*t.inner)
}

// cacheKV returns beam cache c's key and value rows of layer i.
func (s *decoder) cacheKV(c []float32, i int) (k, v []float32) {
	n := s.maxLen * s.m.txt.inner
	return c[2*i*n : (2*i+1)*n], c[(2*i+1)*n : (2*i+2)*n]
}

// reorder makes beam i of the next step continue beam parents[i]: the
// first child of a beam takes its cache over, further children get a
// copy of the rows written so far.
func (s *decoder) reorder(parents []int) {
	used := s.used[:0]
	for range s.caches {
		used = append(used, false)
	}
	next := s.next[:0]
	for _, p := range parents {
		var c []float32
		if !used[p] {
			used[p] = true
			c = s.caches[p]
		}
		next = append(next, c)
	}
	for p, u := range used {
		if !u {
			s.spare = append(s.spare, s.caches[p])
		}
	}
	rows := s.pos * s.m.txt.inner
	for i, p := range parents {
		if next[i] != nil {
			continue
		}
		var c []float32
		if n := len(s.spare); n > 0 {
			c, s.spare = s.spare[n-1], s.spare[:n-1]
		} else {
			c = s.newCache()
		}
		for l := range s.m.txt.dec {
			dk, dv := s.cacheKV(c, l)
			sk, sv := s.cacheKV(s.caches[p], l)
			copy(dk[:rows], sk[:rows])
			copy(dv[:rows], sv[:rows])
		}
		next[i] = c
	}
	// The old slice of caches becomes the next step's scratch.
	s.caches, s.next, s.used = next, s.caches, used
}

// buffers sizes the step buffers for nb beams.
func (s *decoder) buffers(nb int) {
	if nb <= s.beams {
		return
	}
	t := &s.m.txt
	s.beams = nb
	f := func(n int) []float32 { return make([]float32, nb*n) }
	s.x, s.norm, s.o = f(t.d), f(t.d), f(t.d)
	s.q, s.k, s.v, s.a = f(t.inner), f(t.inner), f(t.inner), f(t.inner)
	s.gate, s.up = f(t.ff), f(t.ff)
	s.jobs = make([]attnJob, nb)
	s.logits = f(t.vocab)
}

// step feeds tokens[i] to the continuation of beam parents[i] (indices into
// the previous step's beams; the first step has the single beam 0) and
// returns the logits, len(tokens) x vocab.
func (s *decoder) step(ctx context.Context, parents, tokens []int) ([]float32, error) {
	m := s.m
	t := &m.txt
	if s.pos >= s.maxLen {
		return nil, fmt.Errorf("decoder: step %d beyond the cache of %d", s.pos, s.maxLen)
	}
	s.reorder(parents)
	nb := len(tokens)
	s.buffers(nb)
	d, inner := t.d, t.inner
	x, norm, o := s.x[:nb*d], s.norm[:nb*d], s.o[:nb*d]
	q, k, v, a := s.q[:nb*inner], s.k[:nb*inner], s.v[:nb*inner], s.a[:nb*inner]
	gate, up := s.gate[:nb*t.ff], s.up[:nb*t.ff]
	t.embed(x, tokens)
	sh := attnShape{heads: t.heads, dh: t.dh, scale: 1}
	jobs := s.jobs[:nb]
	pos := s.pos
	for i := range t.dec {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := &t.dec[i]
		// Self-attention over each beam's cache, this step's key and value
		// appended to it.
		m.rmsRows(norm, x, b.attnNorm, nb, d, t.eps)
		m.pool.MatMul(q, b.q, norm, nb)
		m.pool.MatMul(k, b.k, norm, nb)
		m.pool.MatMul(v, b.v, norm, nb)
		for j := 0; j < nb; j++ {
			ck, cv := s.cacheKV(s.caches[j], i)
			copy(ck[pos*inner:(pos+1)*inner], k[j*inner:(j+1)*inner])
			copy(cv[pos*inner:(pos+1)*inner], v[j*inner:(j+1)*inner])
			jobs[j] = attnJob{
				q: q[j*inner:], qStride: inner, nq: 1, qpos: pos,
				k: ck, v: cv, kvStride: inner, nk: pos + 1,
				out: a[j*inner:], outStride: inner,
				bias: s.bias, nrel: s.maxLen, relOff: s.maxLen - 1,
			}
		}
		attend(m.pool, sh, jobs, &s.work)
		m.pool.MatMul(o, b.o, a, nb)
		m.addInto(x, o)
		// Cross-attention over the encoder output: one job for all beams.
		m.rmsRows(norm, x, b.crossNorm, nb, d, t.eps)
		m.pool.MatMul(q, b.cq, norm, nb)
		cj := &s.cross[i]
		cj.q, cj.qStride, cj.nq, cj.out, cj.outStride = q, inner, nb, a, inner
		attend(m.pool, sh, s.cross[i:i+1], &s.work)
		m.pool.MatMul(o, b.co, a, nb)
		m.addInto(x, o)
		// Feed-forward.
		m.rmsRows(norm, x, b.ffnNorm, nb, d, t.eps)
		m.ffn(b, o, norm, gate, up, nb)
		m.addInto(x, o)
	}
	m.rmsRows(norm, x, t.decNorm, nb, d, t.eps)
	if t.tied {
		neon.Scale(norm, float32(1/math.Sqrt(float64(d))))
	}
	logits := s.logits[:nb*t.vocab]
	m.pool.MatMul(logits, t.head, norm, nb)
	s.pos++
	return logits, nil
}

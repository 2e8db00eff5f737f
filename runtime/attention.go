package runtime

import (
	"math"
	"sync"

	"github.com/palid/palid/neon"
)

// Attention is blocked and streams over keys with an online softmax (the
// flash-attention recurrence). A work item is one head of a block of up to
// attnQBlock queries; it walks the keys in tiles of attnKBlock. attend
// first copies each job's keys transposed and its values gathered per head
// (copies as large as they are: linear in tokens), so that within a tile
// the scores are one matrix product (queries x transposed keys) and the
// probabilities times values another (probabilities x the head's value
// rows), both on neon.GemmF32's register-tiled kernels. Each score row
// updates its query's running maximum and sum of exponentials and
// rescales its running output. A worker's scratch is fixed in size
// (attnScratch), and no query x key score matrix is ever held.
//
// Jobs of fewer than attnPackMin queries (decoder self-attention) read the
// strided key and value rows directly, one dot product per score and one
// axpy per value, unless they come with transposed keys and per-head
// values (the decoder's cross-attention, laid out once per request).

const (
	attnQBlock  = 32   // queries per work item
	attnKBlock  = 1024 // keys per score tile
	attnPackMin = 4    // fewest queries worth transposing keys and values for
)

// attnShape is what all jobs of one attend call share.
type attnShape struct {
	heads, dh int
	scale     float32 // applied to q·k
}

// attnJob is one attention problem: nq query rows against nk key/value
// rows, each row holding every head (head h at columns h*dh..h*dh+dh).
type attnJob struct {
	q         []float32
	qStride   int
	nq        int
	k, v      []float32 // same row stride
	kvStride  int
	nk        int
	out       []float32
	outStride int
	// qpos is the position of query 0; keys sit at positions 0..nk-1.
	qpos int
	// causal hides keys after the query's position.
	causal bool
	// bias, when set, is added to every score: bias[h*nrel + (key pos -
	// query pos) + relOff].
	bias         []float32
	nrel, relOff int

	// kt is k transposed (heads*dh rows of nk, head h at rows
	// h*dh..h*dh+dh) and vh is v gathered by head (head h's nk x dh value
	// rows at h*nk*dh). A job that comes with them (k and v may then be
	// nil) runs tiled whatever its number of queries; attend fills them
	// for jobs of attnPackMin queries or more; other jobs run direct.
	kt, vh []float32
	// kt16 and vh16, when set instead of kt and vh, are the same in half
	// precision (neon.ToF16): the decoder's cross-attention of a quantized
	// model, which then reads half the bytes per step.
	kt16, vh16 []uint16
}

// laidOut reports whether the job comes with transposed keys and per-head
// values, in float32 or half precision.
func (j *attnJob) laidOut() bool { return j.kt != nil || j.kt16 != nil }

// attnWork keeps attend's transposed keys, per-head values and its workers'
// scratch between calls so that the layers of one forward pass reuse them.
type attnWork struct {
	buf []float32
	// starts[i] is the first work item of job i; filled lists the jobs
	// whose kt and vh attend laid out in buf (forgotten after the call).
	starts, filled []int
	mu             sync.Mutex
	// free holds scratch not in use by a running chunk.
	free []*attnScratch
}

// scratch returns a scratch for nq queries of dh values against tiles of
// nk keys, reusing a free one that is large enough.
func (w *attnWork) scratch(dh, nq, nk int) *attnScratch {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, sc := range w.free {
		if sc.dh == dh && len(sc.m) >= nq && len(sc.s) >= nq*nk {
			w.free = append(w.free[:i], w.free[i+1:]...)
			return sc
		}
	}
	return newAttnScratch(dh, nq, nk)
}

func (w *attnWork) release(sc *attnScratch) {
	w.mu.Lock()
	w.free = append(w.free, sc)
	w.mu.Unlock()
}

// attend runs every job, spreading heads x query blocks over the pool. w,
// when set, supplies the buffers of the transposed keys and per-head values.
func attend(pool *neon.Pool, sh attnShape, jobs []attnJob, w *attnWork) {
	if w == nil {
		w = &attnWork{}
	}
	if cap(w.starts) < len(jobs)+1 {
		w.starts = make([]int, len(jobs)+1)
	}
	starts := w.starts[:len(jobs)+1]
	starts[0] = 0
	filled := w.filled[:0]
	maxQ, maxK, need := 0, 0, 0
	for i, j := range jobs {
		starts[i+1] = starts[i] + sh.heads*((j.nq+attnQBlock-1)/attnQBlock)
		maxQ = max(maxQ, min(j.nq, attnQBlock))
		maxK = max(maxK, min(j.nk, attnKBlock))
		if !j.laidOut() && j.nq >= attnPackMin {
			need += 2 * j.nk * sh.heads * sh.dh
		}
	}
	if need > 0 {
		if cap(w.buf) < need {
			w.buf = make([]float32, need)
		}
		buf := w.buf[:need]
		for i := range jobs {
			j := &jobs[i]
			if j.laidOut() || j.nq < attnPackMin {
				continue
			}
			n := j.nk * sh.heads * sh.dh
			j.kt, j.vh, buf = buf[:n], buf[n:2*n], buf[2*n:]
			transposeHeads(pool, j.kt, j.k, j.kvStride, j.nk, sh.heads, sh.dh)
			gatherHeads(pool, j.vh, j.v, j.kvStride, j.nk, sh.heads, sh.dh)
			filled = append(filled, i)
		}
	}
	w.filled = filled
	// Jobs are reused by the next layer: forget the buffers attend filled.
	defer func() {
		for _, i := range filled {
			jobs[i].kt, jobs[i].vh = nil, nil
		}
	}()
	pool.RunBalanced(starts[len(jobs)], func(lo, hi int) {
		sc := w.scratch(sh.dh, maxQ, maxK)
		defer w.release(sc)
		ji := 0
		for it := lo; it < hi; it++ {
			for it >= starts[ji+1] {
				ji++
			}
			j := &jobs[ji]
			local := it - starts[ji]
			h := local % sh.heads
			qb := local / sh.heads
			i0 := qb * attnQBlock
			i1 := min(i0+attnQBlock, j.nq)
			if !j.laidOut() {
				attendDirect(sc, sh, j, h, i0, i1)
			} else {
				attendTiled(sc, sh, j, h, i0, i1)
			}
		}
	})
}

// transposeHeads transposes the n rows of src (row stride stride, heads x
// dh columns used) into dst (heads*dh rows of n), heads spread over the
// pool.
func transposeHeads(pool *neon.Pool, dst, src []float32, stride, n, heads, dh int) {
	pool.Run(heads, func(lo, hi int) {
		for h := lo; h < hi; h++ {
			transposeHead(dst, src, stride, n, h*dh, dh)
		}
	})
}

// transposeHead writes columns c0..c0+dh-1 of the n rows of src (row
// stride stride) as rows c0..c0+dh-1 of dst (rows of n), going through the
// rows in groups so that reads and writes both stay in cache lines.
func transposeHead(dst, src []float32, stride, n, c0, dh int) {
	const group = 16
	for r0 := 0; r0 < n; r0 += group {
		r1 := min(r0+group, n)
		for e := c0; e < c0+dh; e++ {
			d := dst[e*n+r0 : e*n+r1]
			for r := range d {
				d[r] = src[(r0+r)*stride+e]
			}
		}
	}
}

// gatherHeads copies the n rows of src (row stride stride, heads x dh
// columns used) head by head into dst: head h's n x dh block at h*n*dh.
func gatherHeads(pool *neon.Pool, dst, src []float32, stride, n, heads, dh int) {
	pool.Run(heads, func(lo, hi int) {
		for h := lo; h < hi; h++ {
			d := dst[h*n*dh : (h+1)*n*dh]
			for r := 0; r < n; r++ {
				copy(d[r*dh:(r+1)*dh], src[r*stride+h*dh:])
			}
		}
	})
}

// attnScratch is one worker's working set; its size depends on the head
// size, the query block and the key tile only.
type attnScratch struct {
	dh  int
	q   []float32 // nq x dh: the block's queries of one head, scaled
	s   []float32 // nq x (at most attnKBlock): scores, then probabilities
	m   []float32 // running max per query
	l   []float32 // running sum per query
	acc []float32 // nq x dh: running output per query
}

func newAttnScratch(dh, nq, nk int) *attnScratch {
	sc := &attnScratch{
		dh:  dh,
		s:   make([]float32, nq*nk),
		m:   make([]float32, nq),
		l:   make([]float32, nq),
		acc: make([]float32, nq*dh),
	}
	sc.q = make([]float32, nq*dh)
	return sc
}

// attendTiled computes head h of queries i0..i1-1 of job j from the
// transposed keys and per-head values (j.kt, j.vh, or in half precision
// j.kt16, j.vh16).
func attendTiled(sc *attnScratch, sh attnShape, j *attnJob, h, i0, i1 int) {
	dh := sh.dh
	nq := i1 - i0
	negInf := float32(math.Inf(-1))
	ho := h * dh
	for i := 0; i < nq; i++ {
		sc.m[i] = negInf
		sc.l[i] = 0
		qi := sc.q[i*dh : (i+1)*dh]
		copy(qi, j.q[(i0+i)*j.qStride+ho:])
		if sh.scale != 1 {
			neon.Scale(qi, sh.scale)
		}
	}
	q := sc.q[:nq*dh]
	acc := sc.acc[:nq*dh]
	clear(acc)
	var bias []float32
	if j.bias != nil {
		bias = j.bias[h*j.nrel : (h+1)*j.nrel]
	}
	// Keys past kEnd are hidden from every query of the block.
	kEnd := j.nk
	if j.causal {
		kEnd = min(kEnd, j.qpos+i1)
	}
	for j0 := 0; j0 < kEnd; j0 += attnKBlock {
		nk := min(attnKBlock, kEnd-j0)
		// Scores: the block's queries (nq x dh) times the tile's
		// transposed keys (dh rows of the tile's nk keys).
		s := sc.s[:nq*nk]
		if j.kt16 != nil {
			neon.GemmF16(s, nk, q, dh, j.kt16[ho*j.nk+j0:], j.nk, nq, nk, dh, false)
		} else {
			neon.GemmF32(s, nk, q, dh, j.kt[ho*j.nk+j0:], j.nk, nq, nk, dh, false)
		}

		// Softmax bookkeeping, row by row; s becomes the probabilities.
		for i := 0; i < nq; i++ {
			qp := j.qpos + i0 + i
			row := s[i*nk : (i+1)*nk]
			valid := nk
			if j.causal {
				valid = min(nk, max(qp+1-j0, 0))
			}
			if bias != nil && valid > 0 {
				b := bias[j0-qp+j.relOff:]
				for c := 0; c < valid; c++ {
					row[c] += b[c]
				}
			}
			mx := sc.m[i]
			for _, x := range row[:valid] {
				if x > mx {
					mx = x
				}
			}
			if mx == negInf {
				clear(row)
				continue
			}
			if old := sc.m[i]; old != mx && old != negInf {
				c := expNeg(old - mx)
				neon.Scale(acc[i*dh:(i+1)*dh], c)
				sc.l[i] *= c
			}
			sc.m[i] = mx
			sc.l[i] += neon.ExpSum(row[:valid], mx)
			clear(row[valid:])
		}

		// Probabilities (nq x nk) times the tile's value rows (nk x dh),
		// added to the running outputs.
		if j.vh16 != nil {
			neon.GemmF16(acc, dh, s, nk, j.vh16[h*j.nk*dh+j0*dh:], dh, nq, dh, nk, true)
		} else {
			neon.GemmF32(acc, dh, s, nk, j.vh[h*j.nk*dh+j0*dh:], dh, nq, dh, nk, true)
		}
	}
	finishRows(sc, j, ho, dh, i0, nq)
}

// attendDirect computes head h of queries i0..i1-1 of job j straight from
// the strided rows: one dot product per score, one axpy per value.
func attendDirect(sc *attnScratch, sh attnShape, j *attnJob, h, i0, i1 int) {
	dh := sh.dh
	nq := i1 - i0
	negInf := float32(math.Inf(-1))
	for i := 0; i < nq; i++ {
		sc.m[i] = negInf
		sc.l[i] = 0
	}
	acc := sc.acc[:nq*dh]
	clear(acc)
	ho := h * dh
	var bias []float32
	if j.bias != nil {
		bias = j.bias[h*j.nrel : (h+1)*j.nrel]
	}
	for i := 0; i < nq; i++ {
		qi := j.q[(i0+i)*j.qStride+ho : (i0+i)*j.qStride+ho+dh]
		qp := j.qpos + i0 + i
		kEnd := j.nk
		if j.causal {
			kEnd = min(kEnd, qp+1)
		}
		ai := acc[i*dh : (i+1)*dh]
		for j0 := 0; j0 < kEnd; j0 += attnKBlock {
			j1 := min(j0+attnKBlock, kEnd)
			s := sc.s[:j1-j0]
			mx := sc.m[i]
			for kj := j0; kj < j1; kj++ {
				o := kj*j.kvStride + ho
				x := neon.Dot(qi, j.k[o:o+dh]) * sh.scale
				if bias != nil {
					x += bias[kj-qp+j.relOff]
				}
				s[kj-j0] = x
				if x > mx {
					mx = x
				}
			}
			if old := sc.m[i]; old != mx && old != negInf {
				c := expNeg(old - mx)
				neon.Scale(ai, c)
				sc.l[i] *= c
			}
			sc.m[i] = mx
			l := sc.l[i]
			for kj := j0; kj < j1; kj++ {
				p := expNeg(s[kj-j0] - mx)
				l += p
				o := kj*j.kvStride + ho
				neon.Axpy(ai, p, j.v[o:o+dh])
			}
			sc.l[i] = l
		}
	}
	finishRows(sc, j, ho, dh, i0, nq)
}

// finishRows divides the accumulated outputs by their sums into job j's
// output (rows with no visible key get zeros).
func finishRows(sc *attnScratch, j *attnJob, ho, dh, i0, nq int) {
	for i := 0; i < nq; i++ {
		out := j.out[(i0+i)*j.outStride+ho : (i0+i)*j.outStride+ho+dh]
		if sc.l[i] == 0 {
			clear(out)
			continue
		}
		inv := 1 / sc.l[i]
		for c := range out {
			out[c] = sc.acc[i*dh+c] * inv
		}
	}
}

// expNeg is e^x for x <= 0 in float32 (relative error below 3e-7; 0 below
// -87): range reduction to x = k ln2 + r, |r| <= ln2/2, and a degree-6
// Taylor polynomial. It is several times faster than math.Exp, which the
// softmax of long sequences would otherwise spend most of its time in.
func expNeg(x float32) float32 {
	if x < -87 {
		return 0
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693145751953125
		ln2lo = 1.42860682030941723212e-6
	)
	k := int32(x*log2e - 0.5)
	kf := float32(k)
	r := x - kf*ln2hi - kf*ln2lo
	p := 1 + r*(1+r*(0.5+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * math.Float32frombits(uint32(k+127)<<23)
}

package runtime

import (
	"math"

	"github.com/palid/palid/neon"
)

// Attention streams over blocks of keys with an online softmax (the
// flash-attention recurrence): for each query it keeps the running maximum,
// the running sum of exponentials and the running weighted sum of values,
// so no query x key score matrix is ever held; the working set of a worker
// is one block of scores and one block of accumulators.

const (
	attnQBlock = 16  // queries per work item
	attnKBlock = 256 // keys per block of scores
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
}

// attend runs every job, spreading heads x query blocks over the pool.
func attend(pool *neon.Pool, sh attnShape, jobs []attnJob) {
	starts := make([]int, len(jobs)+1)
	for i, j := range jobs {
		starts[i+1] = starts[i] + sh.heads*((j.nq+attnQBlock-1)/attnQBlock)
	}
	pool.Run(starts[len(jobs)], func(lo, hi int) {
		sc := newAttnScratch(sh.dh)
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
			attendBlock(sc, sh, j, h, i0, i1)
		}
	})
}

type attnScratch struct {
	s   []float32 // one block of scores
	m   []float32 // running max per query
	l   []float32 // running sum per query
	acc []float32 // running output per query
}

func newAttnScratch(dh int) *attnScratch {
	return &attnScratch{
		s:   make([]float32, attnKBlock),
		m:   make([]float32, attnQBlock),
		l:   make([]float32, attnQBlock),
		acc: make([]float32, attnQBlock*dh),
	}
}

// attendBlock computes head h of queries i0..i1-1 of job j.
func attendBlock(sc *attnScratch, sh attnShape, j *attnJob, h, i0, i1 int) {
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
	for j0 := 0; j0 < j.nk; j0 += attnKBlock {
		j1 := min(j0+attnKBlock, j.nk)
		if j.causal && j0 > j.qpos+i1-1 {
			break
		}
		for i := 0; i < nq; i++ {
			qi := j.q[(i0+i)*j.qStride+ho : (i0+i)*j.qStride+ho+dh]
			qp := j.qpos + i0 + i
			jmax := j1
			if j.causal {
				jmax = min(j1, qp+1)
			}
			if jmax <= j0 {
				continue
			}
			s := sc.s[:jmax-j0]
			mx := sc.m[i]
			for kj := j0; kj < jmax; kj++ {
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
			ai := acc[i*dh : (i+1)*dh]
			if old := sc.m[i]; old != mx && old != negInf {
				c := expNeg(old - mx)
				neon.Scale(ai, c)
				sc.l[i] *= c
			}
			sc.m[i] = mx
			l := sc.l[i]
			for kj := j0; kj < jmax; kj++ {
				p := expNeg(s[kj-j0] - mx)
				l += p
				o := kj*j.kvStride + ho
				neon.Axpy(ai, p, j.v[o:o+dh])
			}
			sc.l[i] = l
		}
	}
	for i := 0; i < nq; i++ {
		out := j.out[(i0+i)*j.outStride+ho : (i0+i)*j.outStride+ho+dh]
		if sc.l[i] == 0 {
			clear(out)
			continue
		}
		inv := 1 / sc.l[i]
		for c := range out {
			out[c] = acc[i*dh+c] * inv
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

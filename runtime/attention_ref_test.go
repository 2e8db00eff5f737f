package runtime

import (
	"math"

	"github.com/palid/palid/neon"
)

// attendRef is the engine's first attention, kept as the reference of
// tests and benchmarks: it streams over blocks of keys with an online
// softmax, one neon.Dot per query-key pair and one neon.Axpy per value.

const (
	refQBlock = 16
	refKBlock = 256
)

// attendRef runs every job, spreading heads x query blocks over the pool.
func attendRef(pool *neon.Pool, sh attnShape, jobs []attnJob) {
	starts := make([]int, len(jobs)+1)
	for i, j := range jobs {
		starts[i+1] = starts[i] + sh.heads*((j.nq+refQBlock-1)/refQBlock)
	}
	pool.Run(starts[len(jobs)], func(lo, hi int) {
		sc := newAttnScratchRef(sh.dh)
		ji := 0
		for it := lo; it < hi; it++ {
			for it >= starts[ji+1] {
				ji++
			}
			j := &jobs[ji]
			local := it - starts[ji]
			h := local % sh.heads
			qb := local / sh.heads
			i0 := qb * refQBlock
			i1 := min(i0+refQBlock, j.nq)
			attendBlockRef(sc, sh, j, h, i0, i1)
		}
	})
}

type attnScratchRef struct {
	s   []float32 // one block of scores
	m   []float32 // running max per query
	l   []float32 // running sum per query
	acc []float32 // running output per query
}

func newAttnScratchRef(dh int) *attnScratchRef {
	return &attnScratchRef{
		s:   make([]float32, refKBlock),
		m:   make([]float32, refQBlock),
		l:   make([]float32, refQBlock),
		acc: make([]float32, refQBlock*dh),
	}
}

// attendBlockRef computes head h of queries i0..i1-1 of job j.
func attendBlockRef(sc *attnScratchRef, sh attnShape, j *attnJob, h, i0, i1 int) {
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
	for j0 := 0; j0 < j.nk; j0 += refKBlock {
		j1 := min(j0+refKBlock, j.nk)
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

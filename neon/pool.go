package neon

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool is a fixed set of worker goroutines that share out loops; there is
// no goroutine per row or per call. The goroutine calling Run takes part
// in the work, so Run never waits for a busy worker: concurrent and nested
// calls always make progress, and a nested call made while every worker is
// busy runs inline in its caller.
type Pool struct {
	threads int
	jobs    chan *job
	quit    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// job is one Run call: chunks are taken by atomic increment.
type job struct {
	fn      func(lo, hi int)
	n       int
	chunks  int
	next    atomic.Int64
	left    atomic.Int64 // chunks not yet finished
	pending sync.WaitGroup
}

// spinRounds is how many times an idle worker, and a caller waiting for
// its job's last chunks, yields (runtime.Gosched) before it blocks: a
// decode step makes about a hundred short Run calls in a row, and waking
// a blocked goroutine costs more than the work of some of them.
const spinRounds = 200

// NewPool starts a pool of threads workers in total, the caller of Run
// counting as one; threads <= 0 means runtime.NumCPU().
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{
		threads: threads,
		jobs:    make(chan *job, 4*threads),
		quit:    make(chan struct{}),
	}
	for i := 1; i < threads; i++ {
		p.wg.Add(1)
		go p.worker()
	}
	return p
}

// Threads returns the number of threads that share work (the workers and
// the caller of Run).
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers and waits for them to finish. Run still works
// after Close, on the calling goroutine alone.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}

func (p *Pool) worker() {
	defer p.wg.Done()
	for {
		select {
		case j := <-p.jobs:
			j.work()
			p.spin()
		case <-p.quit:
			return
		}
	}
}

// spin takes jobs that arrive within spinRounds yields of the last one.
func (p *Pool) spin() {
	for i := 0; i < spinRounds; i++ {
		select {
		case j := <-p.jobs:
			j.work()
			i = 0
		default:
			runtime.Gosched()
		}
	}
}

// work runs chunks of j until none is left.
func (j *job) work() {
	for {
		c := int(j.next.Add(1) - 1)
		if c >= j.chunks {
			return
		}
		lo := c * j.n / j.chunks
		hi := (c + 1) * j.n / j.chunks
		j.fn(lo, hi)
		j.left.Add(-1)
		j.pending.Done()
	}
}

// Run splits [0, n) into contiguous chunks, calls fn(lo, hi) for each on
// the workers and the calling goroutine, and returns when all are done.
// Every index is covered exactly once. Safe for concurrent use; nested
// calls from inside fn are allowed. A nil Pool runs fn(0, n) inline.
func (p *Pool) Run(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if p == nil || p.threads == 1 || n == 1 {
		fn(0, n)
		return
	}
	p.run(n, min(n, p.threads), fn)
}

// run is Run with a given number of chunks.
func (p *Pool) run(n, chunks int, fn func(lo, hi int)) {
	j := &job{fn: fn, n: n, chunks: chunks}
	j.left.Store(int64(chunks))
	j.pending.Add(chunks)
	// Offer the job to as many idle workers as can help; never block.
offer:
	for i := 1; i < chunks; i++ {
		select {
		case p.jobs <- j:
		default:
			break offer
		}
	}
	j.work()
	for i := 0; i < spinRounds && j.left.Load() > 0; i++ {
		runtime.Gosched()
	}
	j.pending.Wait()
}

// RunBalanced is Run with finer chunks (about four per thread) for loops
// whose iterations differ in cost.
func (p *Pool) RunBalanced(n int, fn func(lo, hi int)) {
	if p == nil || p.threads == 1 || n <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	p.run(n, min(n, 4*p.threads), fn)
}

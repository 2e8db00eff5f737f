package daemon

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrBusy is the outcome of a job offered to a full queue.
var ErrBusy = errors.New("busy: the query queue is full")

// ErrTimeout is the outcome of a job whose deadline passed before it ran.
var ErrTimeout = errors.New("timeout: the query's deadline passed before it could run")

// Job is one question waiting for the worker.
type Job struct {
	// Deadline is when the answer is no longer wanted.
	Deadline time.Time
	// Enqueued is when the job entered the queue.
	Enqueued time.Time
	// Run does the work; it gets a context that ends at Deadline.
	Run func(ctx context.Context)
	// Expired is called instead of Run when the deadline passed in the queue.
	Expired func()
}

// Queue is a bounded queue feeding one worker. Submit never blocks: a full
// queue refuses the job at once, so MQTT handlers can answer busy.
type Queue struct {
	ch   chan *Job
	wg   sync.WaitGroup
	mu   sync.Mutex
	busy bool
	// progress counts jobs taken by the worker (for the watchdog).
	progress uint64
	now      func() time.Time
}

// NewQueue returns a queue holding at most max waiting jobs.
func NewQueue(max int) *Queue {
	return &Queue{ch: make(chan *Job, max), now: time.Now}
}

// Submit offers j; it returns ErrBusy when the queue is full.
func (q *Queue) Submit(j *Job) error {
	if j.Enqueued.IsZero() {
		j.Enqueued = q.now()
	}
	select {
	case q.ch <- j:
		return nil
	default:
		return ErrBusy
	}
}

// Len is the number of waiting jobs.
func (q *Queue) Len() int { return len(q.ch) }

// Cap is the queue's capacity.
func (q *Queue) Cap() int { return cap(q.ch) }

// Busy reports whether the worker is running a job.
func (q *Queue) Busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.busy
}

// Progress returns a counter that grows each time the worker finishes a job.
func (q *Queue) Progress() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.progress
}

// Work runs jobs one at a time until ctx ends; jobs still waiting then are
// expired (answered, never dropped silently). onBusy, if set, is called when
// the worker starts and stops a job.
func (q *Queue) Work(ctx context.Context, onBusy func(bool)) {
	for {
		if ctx.Err() != nil {
			q.drain()
			return
		}
		select {
		case <-ctx.Done():
			q.drain()
			return
		case j := <-q.ch:
			q.run(ctx, j, onBusy)
		}
	}
}

func (q *Queue) run(ctx context.Context, j *Job, onBusy func(bool)) {
	if !j.Deadline.IsZero() && !q.now().Before(j.Deadline) {
		if j.Expired != nil {
			j.Expired()
		}
		q.mu.Lock()
		q.progress++
		q.mu.Unlock()
		return
	}
	q.mu.Lock()
	q.busy = true
	q.mu.Unlock()
	if onBusy != nil {
		onBusy(true)
	}
	jctx := ctx
	if !j.Deadline.IsZero() {
		var cancel context.CancelFunc
		jctx, cancel = context.WithDeadline(ctx, j.Deadline)
		defer cancel()
	}
	j.Run(jctx)
	q.mu.Lock()
	q.busy = false
	q.progress++
	q.mu.Unlock()
	if onBusy != nil {
		onBusy(false)
	}
}

func (q *Queue) drain() {
	for {
		select {
		case j := <-q.ch:
			if j.Expired != nil {
				j.Expired()
			}
		default:
			return
		}
	}
}

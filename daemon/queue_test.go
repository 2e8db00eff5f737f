package daemon

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestQueueBusyAndOrder(t *testing.T) {
	q := NewQueue(2)
	var mu sync.Mutex
	var ran []int
	block := make(chan struct{})
	mk := func(i int) *Job {
		return &Job{Run: func(context.Context) {
			if i == 0 {
				<-block
			}
			mu.Lock()
			ran = append(ran, i)
			mu.Unlock()
		}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if err := q.Submit(mk(0)); err != nil {
		t.Fatal(err)
	}
	go func() { q.Work(ctx, nil); close(done) }()
	for !q.Busy() {
		time.Sleep(time.Millisecond)
	}
	if err := q.Submit(mk(1)); err != nil {
		t.Fatal(err)
	}
	if err := q.Submit(mk(2)); err != nil {
		t.Fatal(err)
	}
	if err := q.Submit(mk(3)); !errors.Is(err, ErrBusy) {
		t.Fatalf("submit to full queue: %v, want ErrBusy", err)
	}
	close(block)
	for q.Progress() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if len(ran) != 3 || ran[0] != 0 || ran[1] != 1 || ran[2] != 2 {
		t.Errorf("ran %v", ran)
	}
}

func TestQueueExpiredNotRun(t *testing.T) {
	q := NewQueue(4)
	var expired, run bool
	q.Submit(&Job{Deadline: time.Now().Add(-time.Second),
		Run: func(context.Context) { run = true }, Expired: func() { expired = true }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Work(ctx, nil); close(done) }()
	for q.Progress() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if run || !expired {
		t.Errorf("run=%v expired=%v; want the expired job answered, not run", run, expired)
	}
}

func TestQueueDrainOnShutdown(t *testing.T) {
	q := NewQueue(4)
	n := 0
	for i := 0; i < 3; i++ {
		q.Submit(&Job{Run: func(context.Context) { t.Error("ran after shutdown") }, Expired: func() { n++ }})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Work(ctx, nil)
	if n != 3 {
		t.Errorf("%d of 3 waiting jobs answered at shutdown", n)
	}
}

package mqtt

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// flushToken is a paho.Token the test completes by hand.
type flushToken struct {
	done chan struct{}
	err  error
}

func newFlushToken() *flushToken { return &flushToken{done: make(chan struct{})} }
func (t *flushToken) Wait() bool { <-t.done; return true }
func (t *flushToken) WaitTimeout(d time.Duration) bool {
	select {
	case <-t.done:
		return true
	case <-time.After(d):
		return false
	}
}
func (t *flushToken) Done() <-chan struct{} { return t.done }
func (t *flushToken) Error() error          { return t.err }
func (t *flushToken) complete(err error)    { t.err = err; close(t.done) }

// flushPaho stands in for the broker connection in flush's unit test: it
// records every publish and lets the test act at each IsConnectionOpen,
// which flush calls once per outbox entry.
type flushPaho struct {
	paho.Client // not called
	mu          sync.Mutex
	published   map[string][]*flushToken
	onOpen      func()
}

func (p *flushPaho) IsConnectionOpen() bool {
	if p.onOpen != nil {
		f := p.onOpen
		p.onOpen = nil
		f()
	}
	return true
}

func (p *flushPaho) Publish(topic string, qos byte, retained bool, payload any) paho.Token {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok := newFlushToken()
	k := string(payload.([]byte))
	p.published[k] = append(p.published[k], tok)
	return tok
}

func (p *flushPaho) tokens(payload string) []*flushToken {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published[payload]
}

// TestFlushSkipsEntriesAckedSinceItsSnapshot: flush walks a copy of the
// outbox; an entry acknowledged (and so no longer in flight) after that copy
// was taken must not be published again. This once sent busy answers twice
// under load (TestBusyWhenQueueFull failed about once in 80 runs).
func TestFlushSkipsEntriesAckedSinceItsSnapshot(t *testing.T) {
	box, _, err := openOutbox(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &flushPaho{published: map[string][]*flushToken{}}
	c := &Client{pc: p, box: box, inflight: map[uint64]bool{}, done: make(chan struct{}),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c.resumed.Store(true)
	defer func() { close(c.done); c.wg.Wait() }()

	box.append("r", []byte("first"))
	box.append("r", []byte("second"))
	c.flush() // both handed to paho, both in flight
	if len(p.tokens("first")) != 1 || len(p.tokens("second")) != 1 {
		t.Fatalf("first flush published %d and %d times, want 1 and 1", len(p.tokens("first")), len(p.tokens("second")))
	}
	// "first" fails (kept for a retry); its await clears it from inflight.
	p.tokens("first")[0].complete(paho.ErrNotConnected)
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return !c.inflight[1] })

	// The next flush takes its snapshot [first, second]; while it is on
	// "first", the broker acknowledges "second" and await removes it.
	p.onOpen = func() {
		p.tokens("second")[0].complete(nil)
		waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return !c.inflight[2] })
	}
	c.flush()
	if n := len(p.tokens("first")); n != 2 {
		t.Errorf("the failed entry was published %d times in all, want 2 (once more)", n)
	}
	if n := len(p.tokens("second")); n != 1 {
		t.Errorf("the acknowledged entry was published %d times, want once", n)
	}
	if box.has(2) || !box.has(1) {
		t.Errorf("outbox holds first %v, second %v; want only first", box.has(1), box.has(2))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}

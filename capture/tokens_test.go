package capture

import (
	"context"
	"errors"
	"image"
	"sync/atomic"
	"testing"
	"time"
)

// countingEncoder returns a token vector that identifies the frame.
func countingEncoder(n *atomic.Int32) Encoder {
	return func(ctx context.Context, f Frame) ([]float32, error) {
		n.Add(1)
		return []float32{float32(f.Seq), 1, 2, 3}, nil // 16 bytes
	}
}

func frameAt(seq uint64, ms int) Frame {
	return Frame{Image: image.NewRGBA(image.Rect(0, 0, 2, 2)), Seq: seq, Time: t0.Add(time.Duration(ms) * time.Millisecond)}
}

func TestTokenCacheAhead(t *testing.T) {
	var calls atomic.Int32
	c := NewTokenCache(countingEncoder(&calls), TokenCacheOptions{Interval: 250 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	// 20 frames at 100 ms, offered one by one as a capture loop would,
	// waiting for the encoder so that only the rate limit drops frames.
	for i := uint64(1); i <= 20; i++ {
		c.Offer(frameAt(i, int(i)*100))
		deadline := time.Now().Add(2 * time.Second)
		for c.Stats().Encoded+c.Stats().Skipped < int(i) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	// Encoded: 1, 4, 7, 10, 13, 16, 19 (at least 250 ms apart).
	var got []uint64
	for i := uint64(1); i <= 20; i++ {
		if c.Has(i) {
			got = append(got, i)
		}
	}
	if !equal(got, []uint64{1, 4, 7, 10, 13, 16, 19}) {
		t.Errorf("cached %v", got)
	}
	frames := []Frame{frameAt(4, 400), frameAt(5, 500), frameAt(7, 700)}
	toks, err := c.Tokens(context.Background(), frames)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if toks[i][0] != float32(f.Seq) {
			t.Errorf("tokens of frame %d: %v", f.Seq, toks[i])
		}
	}
	st := c.Stats()
	if st.Hits != 2 || st.Misses != 1 || st.Encoded != 7 || int(calls.Load()) != 8 {
		t.Errorf("stats %+v, encoder calls %d", st, calls.Load())
	}
	if !c.Has(5) {
		t.Error("tokens encoded on demand are not cached")
	}
}

func TestTokenCacheBudgetAndErrors(t *testing.T) {
	var calls atomic.Int32
	c := NewTokenCache(countingEncoder(&calls), TokenCacheOptions{Budget: 16 * 3})
	var fs []Frame
	for i := uint64(1); i <= 5; i++ {
		fs = append(fs, frameAt(i, int(i)))
	}
	if _, err := c.Tokens(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 3 || c.Has(2) || !c.Has(3) || !c.Has(5) {
		t.Errorf("budget of 3 entries: Len %d", c.Len())
	}
	bad := NewTokenCache(func(context.Context, Frame) ([]float32, error) { return nil, errors.New("vit failed") }, TokenCacheOptions{})
	if _, err := bad.Tokens(context.Background(), fs); err == nil || err.Error() != "vit failed" {
		t.Errorf("encoder error: %v", err)
	}
}

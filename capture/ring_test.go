package capture

import (
	"context"
	"image"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fill adds frames with the given sequence numbers, 100 ms apart by
// sequence, each 10x10 RGBA (400 bytes).
func fill(r *Ring, seqs ...uint64) {
	for _, s := range seqs {
		r.Add(Frame{Image: image.NewRGBA(image.Rect(0, 0, 10, 10)), Seq: s, Time: t0.Add(time.Duration(s) * 100 * time.Millisecond)})
	}
}

func seqsOf(w Window) []uint64 {
	var s []uint64
	for _, f := range w.Frames {
		s = append(s, f.Seq)
	}
	return s
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRingBudget(t *testing.T) {
	r := NewRing(400 * 5)
	for i := uint64(1); i <= 12; i++ {
		fill(r, i)
		if r.Bytes() > 2000 {
			t.Fatalf("after %d frames the ring holds %d bytes", i, r.Bytes())
		}
	}
	if r.Len() != 5 {
		t.Fatalf("Len = %d, want 5", r.Len())
	}
	fs := r.Frames()
	if fs[0].Seq != 8 || fs[4].Seq != 12 {
		t.Errorf("held %d..%d, want 8..12", fs[0].Seq, fs[4].Seq)
	}
	// A frame larger than the budget is still kept, alone.
	r.Add(Frame{Image: image.NewRGBA(image.Rect(0, 0, 100, 100)), Seq: 13, Time: t0})
	if r.Len() != 1 || r.Bytes() != 40000 {
		t.Errorf("oversized frame: Len %d Bytes %d", r.Len(), r.Bytes())
	}
	if f, ok := r.Latest(); !ok || f.Seq != 13 {
		t.Errorf("Latest = %v %v", f.Seq, ok)
	}
}

func TestWindowFrameStride(t *testing.T) {
	r := NewRing(1 << 30)
	for i := uint64(1); i <= 40; i++ {
		fill(r, i)
	}
	cases := []struct {
		n, stride int
		want      []uint64
	}{
		{1, 1, []uint64{40}},
		{1, 0, []uint64{40}},
		{4, 1, []uint64{37, 38, 39, 40}},
		{4, 3, []uint64{31, 34, 37, 40}},
		{16, 2, []uint64{10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40}},
		{16, 4, []uint64{4, 8, 12, 16, 20, 24, 28, 32, 36, 40}}, // short: 10 of 16
		{16, 100, []uint64{40}},
	}
	for _, c := range cases {
		w, err := r.Window(c.n, Stride{Frames: c.stride})
		if err != nil {
			t.Fatalf("n=%d stride=%d: %v", c.n, c.stride, err)
		}
		if got := seqsOf(w); !equal(got, c.want) {
			t.Errorf("n=%d stride=%d: got %v, want %v", c.n, c.stride, got, c.want)
		}
		if w.Short() != (len(c.want) < c.n) || w.Requested != c.n {
			t.Errorf("n=%d stride=%d: Short=%v Requested=%d", c.n, c.stride, w.Short(), w.Requested)
		}
	}
}

func TestWindowFrameStrideGap(t *testing.T) {
	r := NewRing(1 << 30)
	fill(r, 1, 2, 3, 4, 6, 7, 8) // 5 was dropped
	w, _ := r.Window(8, Stride{Frames: 2})
	if got := seqsOf(w); !equal(got, []uint64{2, 4, 6, 8}) {
		t.Errorf("got %v", got)
	}
	w, _ = r.Window(8, Stride{Frames: 1})
	if got := seqsOf(w); !equal(got, []uint64{6, 7, 8}) {
		t.Errorf("a gap ends the window: got %v", got)
	}
}

func TestWindowTimeStride(t *testing.T) {
	r := NewRing(1 << 30)
	// Frames at 100 ms, with jitter of a few ms.
	for i := uint64(1); i <= 50; i++ {
		j := time.Duration(i%3) * 7 * time.Millisecond
		r.Add(Frame{Image: image.NewRGBA(image.Rect(0, 0, 2, 2)), Seq: i, Time: t0.Add(time.Duration(i)*100*time.Millisecond + j)})
	}
	w, err := r.Window(5, Stride{Time: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(w); !equal(got, []uint64{10, 20, 30, 40, 50}) {
		t.Errorf("1s stride: got %v", got)
	}
	w, _ = r.Window(16, Stride{Time: 400 * time.Millisecond})
	if got := seqsOf(w); !equal(got, []uint64{2, 6, 10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50}) || !w.Short() {
		t.Errorf("400ms stride: got %v (short %v)", got, w.Short())
	}
	if w.Span() != w.Frames[len(w.Frames)-1].Time.Sub(w.Frames[0].Time) {
		t.Error("Span")
	}
	// A stride finer than the frame rate never repeats a frame.
	w, _ = r.Window(4, Stride{Time: 30 * time.Millisecond})
	if got := seqsOf(w); len(got) != 1 || got[0] != 50 {
		t.Errorf("30ms stride over 100ms frames: got %v", got)
	}
	// Preferring cached frames within half a stride.
	cached := map[uint64]bool{49: true, 39: true, 31: true}
	w, _ = r.WindowPreferring(3, Stride{Time: time.Second}, func(s uint64) bool { return cached[s] })
	if got := seqsOf(w); !equal(got, []uint64{31, 39, 50}) {
		t.Errorf("preferring cached: got %v", got)
	}
}

func TestWindowErrors(t *testing.T) {
	r := NewRing(1 << 20)
	if _, err := r.Window(1, Stride{Frames: 1}); err != ErrEmpty {
		t.Errorf("empty ring: %v", err)
	}
	fill(r, 1)
	for _, c := range []struct {
		n int
		s Stride
	}{{0, Stride{Frames: 1}}, {17, Stride{Frames: 1}}, {4, Stride{}}, {4, Stride{Frames: -1}}, {2, Stride{Time: -time.Second}}} {
		if _, err := r.Window(c.n, c.s); err == nil {
			t.Errorf("Window(%d, %v): no error", c.n, c.s)
		}
	}
}

func TestRingWaitNewer(t *testing.T) {
	r := NewRing(1 << 20)
	fill(r, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		fill(r, 2)
	}()
	f, err := r.WaitNewer(context.Background(), 1)
	if err != nil || f.Seq != 2 {
		t.Fatalf("WaitNewer = %d, %v", f.Seq, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.WaitNewer(ctx, 2); err == nil {
		t.Error("WaitNewer without a new frame returned")
	}
}

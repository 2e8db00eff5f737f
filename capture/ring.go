package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"
)

// MaxWindow is the most frames a window holds.
const MaxWindow = 16

// Ring holds the most recent frames within a memory budget. The newest
// frame is always kept, even when it alone exceeds the budget. A Ring is
// safe for concurrent use. Frames are shared, not copied: their images
// must not be modified once added.
type Ring struct {
	mu      sync.Mutex
	budget  int64
	used    int64
	frames  []Frame // oldest first
	sizes   []int64
	added   chan struct{} // closed and replaced on every Add
	evicted uint64
}

// NewRing returns a ring that keeps at most budget bytes of pixels.
func NewRing(budget int64) *Ring {
	return &Ring{budget: budget, added: make(chan struct{})}
}

// ImageBytes estimates the memory an image's pixels take.
func ImageBytes(img image.Image) int64 {
	switch m := img.(type) {
	case *image.RGBA:
		return int64(len(m.Pix))
	case *image.NRGBA:
		return int64(len(m.Pix))
	case *image.Gray:
		return int64(len(m.Pix))
	case *image.YCbCr:
		return int64(len(m.Y) + len(m.Cb) + len(m.Cr))
	case nil:
		return 0
	}
	b := img.Bounds()
	return int64(b.Dx()) * int64(b.Dy()) * 4
}

// Add appends f as the newest frame and evicts the oldest frames while
// the ring is over budget.
func (r *Ring) Add(f Frame) {
	n := ImageBytes(f.Image)
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.sizes = append(r.sizes, n)
	r.used += n
	drop := 0
	for drop < len(r.frames)-1 && r.used > r.budget {
		r.used -= r.sizes[drop]
		drop++
	}
	if drop > 0 {
		// Shift down rather than reslice so the backing array does not
		// grow without bound and old images can be collected.
		k := copy(r.frames, r.frames[drop:])
		clear(r.frames[k:])
		r.frames = r.frames[:k]
		copy(r.sizes, r.sizes[drop:])
		r.sizes = r.sizes[:k]
		r.evicted += uint64(drop)
	}
	close(r.added)
	r.added = make(chan struct{})
	r.mu.Unlock()
}

// Len returns the number of frames held.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// Bytes returns the pixel memory held.
func (r *Ring) Bytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used
}

// Latest returns the newest frame; ok is false when the ring is empty.
func (r *Ring) Latest() (f Frame, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.frames) == 0 {
		return Frame{}, false
	}
	return r.frames[len(r.frames)-1], true
}

// Frames returns a copy of the frames held, oldest first.
func (r *Ring) Frames() []Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Frame(nil), r.frames...)
}

// WaitNewer blocks until the ring holds a frame with a sequence number
// greater than seq, and returns the newest frame, or ctx's error.
func (r *Ring) WaitNewer(ctx context.Context, seq uint64) (Frame, error) {
	for {
		r.mu.Lock()
		if n := len(r.frames); n > 0 && r.frames[n-1].Seq > seq {
			f := r.frames[n-1]
			r.mu.Unlock()
			return f, nil
		}
		ch := r.added
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		}
	}
}

// Stride sets the spacing of a window's frames: every Frames-th frame,
// or, when Time is positive, frames Time apart.
type Stride struct {
	Frames int
	Time   time.Duration
}

// String describes the stride, as "4 frames" or "500ms".
func (s Stride) String() string {
	if s.Time > 0 {
		return s.Time.String()
	}
	return fmt.Sprintf("%d frames", s.Frames)
}

// Window is the result of sampling the ring.
type Window struct {
	// Frames are the chosen frames, oldest first, ending with the newest
	// frame of the ring.
	Frames []Frame
	// Requested is how many frames were asked for.
	Requested int
	// Stride is the stride used.
	Stride Stride
}

// Short reports whether the ring could not give as many frames as were
// requested.
func (w Window) Short() bool { return len(w.Frames) < w.Requested }

// Span is the time from the first to the last frame.
func (w Window) Span() time.Duration {
	if len(w.Frames) < 2 {
		return 0
	}
	return w.Frames[len(w.Frames)-1].Time.Sub(w.Frames[0].Time)
}

// ErrEmpty is returned when a window is asked of an empty ring.
var ErrEmpty = errors.New("capture: no frames captured yet")

// Window samples n frames (1 to MaxWindow) ending with the newest one,
// at stride s. With a frame stride the frames are exactly s.Frames
// apart in sequence; with a time stride each is the frame captured
// closest to newest - k*s.Time. When the ring holds too little history
// the window is shorter than n: len(Frames) says how many were given.
func (r *Ring) Window(n int, s Stride) (Window, error) {
	return r.WindowPreferring(n, s, nil)
}

// WindowPreferring is Window where, with a time stride, a frame for
// which cached reports true is chosen over a closer one that is not, as
// long as it lies within half a stride of the wanted time (so a token
// cache filled at about the stride's rate is hit). cached may be nil.
func (r *Ring) WindowPreferring(n int, s Stride, cached func(seq uint64) bool) (Window, error) {
	if n < 1 || n > MaxWindow {
		return Window{}, fmt.Errorf("capture: window of %d frames: want 1 to %d", n, MaxWindow)
	}
	if s.Time < 0 || (s.Time == 0 && s.Frames < 1) {
		if n > 1 || s.Time < 0 || s.Frames < 0 {
			return Window{}, fmt.Errorf("capture: window stride %+v: want a positive number of frames or duration", s)
		}
		s.Frames = 1
	}
	r.mu.Lock()
	frames := r.frames
	if len(frames) == 0 {
		r.mu.Unlock()
		return Window{}, ErrEmpty
	}
	var picked []Frame
	if s.Time > 0 {
		picked = pickByTime(frames, n, s.Time, cached)
	} else {
		// Frames are held in sequence order; sequence numbers may have
		// gaps (dropped frames), so step by Seq, not by index.
		last := frames[len(frames)-1]
		picked = append(picked, last)
		j := len(frames) - 1
		for k := 1; k < n; k++ {
			want := int64(last.Seq) - int64(k*s.Frames)
			if want < 0 {
				break
			}
			for j >= 0 && int64(frames[j].Seq) > want {
				j--
			}
			if j < 0 || int64(frames[j].Seq) != want {
				break // missing or evicted: the window ends here
			}
			picked = append(picked, frames[j])
		}
	}
	r.mu.Unlock()
	// picked is newest first.
	for i, j := 0, len(picked)-1; i < j; i, j = i+1, j-1 {
		picked[i], picked[j] = picked[j], picked[i]
	}
	return Window{Frames: picked, Requested: n, Stride: s}, nil
}

// pickByTime walks back from the newest frame choosing, for each target
// time, the closest frame older than the previous pick and within half a
// stride of the target. frames is oldest first.
func pickByTime(frames []Frame, n int, stride time.Duration, cached func(uint64) bool) []Frame {
	last := frames[len(frames)-1]
	picked := []Frame{last}
	hi := len(frames) - 2 // candidates are frames[:hi+1]
	half := stride / 2
	for k := 1; k < n && hi >= 0; k++ {
		target := last.Time.Add(-time.Duration(k) * stride)
		best, bestCached := -1, -1
		var bestD, bestCachedD time.Duration
		for j := hi; j >= 0; j-- {
			d := frames[j].Time.Sub(target)
			if d < 0 {
				d = -d
			}
			if frames[j].Time.Before(target.Add(-half)) {
				break
			}
			if d > half {
				continue
			}
			if best < 0 || d < bestD {
				best, bestD = j, d
			}
			if cached != nil && cached(frames[j].Seq) && (bestCached < 0 || d < bestCachedD) {
				bestCached, bestCachedD = j, d
			}
		}
		if bestCached >= 0 {
			best = bestCached
		}
		if best < 0 {
			break // no frame near the target: the ring is too short (or has a gap)
		}
		picked = append(picked, frames[best])
		hi = best - 1
	}
	return picked
}

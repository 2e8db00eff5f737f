package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/blackjack/webcam"
)

// Device is the part of *webcam.Webcam (github.com/blackjack/webcam) that
// the V4L2 source uses, so that tests can drive a fake camera.
type Device interface {
	GetSupportedFormats() map[webcam.PixelFormat]string
	GetSupportedFrameSizes(f webcam.PixelFormat) []webcam.FrameSize
	SetImageFormat(f webcam.PixelFormat, width, height uint32) (webcam.PixelFormat, uint32, uint32, error)
	SetFramerate(fps float32) error
	SetBufferCount(count uint32) error
	StartStreaming() error
	// WaitForFrame waits up to timeout seconds; it returns a
	// *webcam.Timeout when none came.
	WaitForFrame(timeout uint32) error
	// GetFrame dequeues a buffer: the bytes stay the driver's until
	// ReleaseFrame(index), so they are copied before that.
	GetFrame() ([]byte, uint32, error)
	ReleaseFrame(index uint32) error
	Close() error
}

var _ Device = (*webcam.Webcam)(nil)

// preferred lists the pixel formats the V4L2 source takes, best first.
var preferred = []PixelFormat{FormatMJPEG, FormatYUYV, FormatNV12}

// Negotiated is what a V4L2 device was set to.
type Negotiated struct {
	Format        PixelFormat
	Width, Height int
}

// V4L2 is a camera source. It reopens the device with backoff when it
// vanishes or stalls and reports its state.
type V4L2 struct {
	*live
	path  string
	negMu sync.Mutex
	neg   Negotiated
}

// OpenV4L2 opens a camera such as /dev/video0, negotiates its format
// (MJPEG, then YUYV, then NV12 unless opts.Format says), frame size
// (nearest to opts.Width x opts.Height, default 640x480) and rate, and
// starts streaming.
func OpenV4L2(path string, opts Options) (*V4L2, error) {
	opts.fill()
	if opts.Buffers < 2 || opts.Buffers > 4 {
		return nil, fmt.Errorf("capture: %s: buffer count %d: want 2 to 4", path, opts.Buffers)
	}
	if opts.OpenDevice == nil {
		opts.OpenDevice = openWebcam
	}
	v := &V4L2{path: path}
	l, err := newLive("v4l2:"+path, opts, func(ctx context.Context) (stream, error) {
		s, err := openV4L2Stream(path, opts)
		if err != nil {
			return nil, err
		}
		v.negMu.Lock()
		v.neg = s.neg
		v.negMu.Unlock()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	v.live = l
	return v, nil
}

func openWebcam(path string) (Device, error) {
	cam, err := webcam.Open(path)
	if err != nil {
		return nil, err
	}
	return cam, nil
}

// Negotiated returns the format and size of the last successful open.
func (v *V4L2) Negotiated() Negotiated {
	v.negMu.Lock()
	defer v.negMu.Unlock()
	return v.neg
}

type v4l2Stream struct {
	path    string
	dev     Device
	neg     Negotiated
	stall   time.Duration
	lastOK  time.Time
	badRuns int
	opts    Options
}

func openV4L2Stream(path string, opts Options) (*v4l2Stream, error) {
	dev, err := opts.OpenDevice(path)
	if err != nil {
		return nil, fmt.Errorf("capture: open %s: %w", path, err)
	}
	neg, err := negotiate(dev, opts)
	if err == nil {
		if opts.FPS > 0 {
			if ferr := dev.SetFramerate(float32(opts.FPS)); ferr != nil {
				opts.Logger.Warn("capture: camera ignores the frame rate", "device", path, "fps", opts.FPS, "err", ferr)
			}
		}
		err = dev.SetBufferCount(uint32(opts.Buffers))
	}
	if err == nil {
		err = dev.StartStreaming()
	}
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("capture: %s: %w", path, err)
	}
	opts.Logger.Info("capture: camera streaming", "device", path, "format", neg.Format.String(), "width", neg.Width, "height", neg.Height)
	return &v4l2Stream{path: path, dev: dev, neg: neg, stall: opts.StallTimeout, lastOK: time.Now(), opts: opts}, nil
}

// negotiate chooses and sets the pixel format and frame size.
func negotiate(dev Device, opts Options) (Negotiated, error) {
	formats := dev.GetSupportedFormats()
	var f PixelFormat
	if opts.Format != 0 {
		if _, ok := formats[webcam.PixelFormat(opts.Format)]; !ok {
			return Negotiated{}, fmt.Errorf("pixel format %v not offered (device offers %s)", opts.Format, formatList(formats))
		}
		f = opts.Format
	} else {
		for _, p := range preferred {
			if _, ok := formats[webcam.PixelFormat(p)]; ok {
				f = p
				break
			}
		}
		if f == 0 {
			return Negotiated{}, fmt.Errorf("no supported pixel format: device offers %s, capture reads MJPG, YUYV, NV12", formatList(formats))
		}
	}
	wantW, wantH := opts.Width, opts.Height
	if wantW <= 0 || wantH <= 0 {
		wantW, wantH = 640, 480
	}
	w, h, ok := chooseSize(dev.GetSupportedFrameSizes(webcam.PixelFormat(f)), wantW, wantH)
	if !ok {
		return Negotiated{}, fmt.Errorf("pixel format %v: device lists no frame sizes", f)
	}
	// Note: webcam v0.6.1 returns the requested size, not the driver's;
	// only listed sizes are asked for, so the driver keeps them.
	got, _, _, err := dev.SetImageFormat(webcam.PixelFormat(f), uint32(w), uint32(h))
	if err != nil {
		return Negotiated{}, fmt.Errorf("set format %v %dx%d: %w", f, w, h, err)
	}
	if PixelFormat(got) != f {
		known := false
		for _, p := range preferred {
			known = known || PixelFormat(got) == p
		}
		if !known {
			return Negotiated{}, fmt.Errorf("asked for %v, driver set %v which capture cannot read", f, PixelFormat(got))
		}
		f = PixelFormat(got)
	}
	return Negotiated{Format: f, Width: w, Height: h}, nil
}

func formatList(m map[webcam.PixelFormat]string) string {
	var s []string
	for f, desc := range m {
		s = append(s, fmt.Sprintf("%v (%s)", PixelFormat(f), desc))
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprint(s)
}

// chooseSize picks the listed size nearest to w x h: the smallest one at
// least as large in both directions, else the largest. Stepwise ranges
// are clamped and rounded to their step.
func chooseSize(sizes []webcam.FrameSize, w, h int) (int, int, bool) {
	type cand struct{ w, h int }
	var cs []cand
	for _, s := range sizes {
		if s.StepWidth == 0 && s.StepHeight == 0 {
			cs = append(cs, cand{int(s.MaxWidth), int(s.MaxHeight)})
			continue
		}
		cs = append(cs, cand{stepClamp(w, s.MinWidth, s.MaxWidth, s.StepWidth), stepClamp(h, s.MinHeight, s.MaxHeight, s.StepHeight)})
	}
	if len(cs) == 0 {
		return 0, 0, false
	}
	best := -1
	for i, c := range cs {
		if c.w >= w && c.h >= h && (best < 0 || c.w*c.h < cs[best].w*cs[best].h) {
			best = i
		}
	}
	if best < 0 {
		for i, c := range cs {
			if best < 0 || c.w*c.h > cs[best].w*cs[best].h {
				best = i
			}
		}
	}
	return cs[best].w, cs[best].h, true
}

func stepClamp(v int, lo, hi, step uint32) int {
	v = max(int(lo), min(int(hi), v))
	if step > 1 {
		v = int(lo) + (v-int(lo))/int(step)*int(step)
	}
	return v
}

// waitSlice is how long one WaitForFrame call may block (the webcam
// library counts in whole seconds); the context is checked in between.
const waitSlice = 1

func (s *v4l2Stream) next(ctx context.Context) (image.Image, time.Time, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, time.Time{}, err
		}
		if time.Since(s.lastOK) > s.stall {
			return nil, time.Time{}, fmt.Errorf("capture: %s: no frame for %v", s.path, s.stall.Round(time.Millisecond))
		}
		err := s.dev.WaitForFrame(waitSlice)
		var timeout *webcam.Timeout
		switch {
		case errors.As(err, &timeout):
			continue
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return nil, time.Time{}, fmt.Errorf("capture: %s: wait for frame: %w", s.path, err)
		}
		buf, index, err := s.dev.GetFrame()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("capture: %s: get frame: %w", s.path, err)
		}
		at := time.Now()
		data := make([]byte, len(buf))
		copy(data, buf)
		if err := s.dev.ReleaseFrame(index); err != nil {
			return nil, time.Time{}, fmt.Errorf("capture: %s: release frame %d: %w", s.path, index, err)
		}
		if len(data) == 0 {
			continue // some drivers hand out empty buffers at start
		}
		img, err := Decode(s.neg.Format, data, s.neg.Width, s.neg.Height)
		if err != nil {
			// A corrupt frame happens (USB bandwidth); skip it. Frames
			// that never decode end as a stall.
			s.badRuns++
			if s.badRuns == 1 || s.badRuns%100 == 0 {
				s.opts.Logger.Warn("capture: dropped undecodable frame", "device", s.path, "err", err, "count", s.badRuns)
			}
			continue
		}
		s.badRuns = 0
		s.lastOK = at
		return img, at, nil
	}
}

func (s *v4l2Stream) close() error {
	return s.dev.Close()
}

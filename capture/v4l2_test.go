package capture

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blackjack/webcam"
)

// fakeCam behaves like *webcam.Webcam on a camera: it lists formats and
// sizes, checks the call order, owns its buffers until ReleaseFrame and
// overwrites a released buffer (so a reader that does not copy sees
// the damage), times out, and can vanish.
type fakeCam struct {
	mu        sync.Mutex
	formats   map[webcam.PixelFormat]string
	sizes     map[webcam.PixelFormat][]webcam.FrameSize
	format    webcam.PixelFormat
	w, h      uint32
	fps       float32
	bufCount  uint32
	streaming bool
	closed    bool
	frames    [][]byte // queue of frames to deliver
	buffers   [][]byte
	held      map[uint32]bool
	next      uint32
	gone      bool // device unplugged: every call fails with ENODEV
	timeouts  int  // WaitForFrame times out this many times first
	opens     *int
	released  int
}

func newFakeCam(formats ...PixelFormat) *fakeCam {
	c := &fakeCam{formats: map[webcam.PixelFormat]string{}, sizes: map[webcam.PixelFormat][]webcam.FrameSize{}, held: map[uint32]bool{}}
	for _, f := range formats {
		c.formats[webcam.PixelFormat(f)] = f.String()
		c.sizes[webcam.PixelFormat(f)] = []webcam.FrameSize{
			{MinWidth: 320, MaxWidth: 320, MinHeight: 240, MaxHeight: 240},
			{MinWidth: 640, MaxWidth: 640, MinHeight: 480, MaxHeight: 480},
			{MinWidth: 1280, MaxWidth: 1280, MinHeight: 720, MaxHeight: 720},
		}
	}
	return c
}

func (c *fakeCam) GetSupportedFormats() map[webcam.PixelFormat]string { return c.formats }
func (c *fakeCam) GetSupportedFrameSizes(f webcam.PixelFormat) []webcam.FrameSize {
	return c.sizes[f]
}
func (c *fakeCam) SetImageFormat(f webcam.PixelFormat, w, h uint32) (webcam.PixelFormat, uint32, uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.formats[f]; !ok {
		return 0, 0, 0, syscall.EINVAL
	}
	c.format, c.w, c.h = f, w, h
	return f, w, h, nil
}
func (c *fakeCam) SetFramerate(fps float32) error { c.fps = fps; return nil }
func (c *fakeCam) SetBufferCount(n uint32) error {
	if c.streaming {
		return errors.New("Cannot set buffer count when streaming")
	}
	c.bufCount = n
	return nil
}
func (c *fakeCam) StartStreaming() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return syscall.ENODEV
	}
	if c.bufCount == 0 || c.bufCount > 4 {
		return errors.New("test: buffer count not set to 1-4")
	}
	c.buffers = make([][]byte, c.bufCount)
	c.streaming = true
	return nil
}
func (c *fakeCam) WaitForFrame(timeout uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return syscall.ENODEV
	}
	if c.timeouts > 0 || len(c.frames) == 0 {
		if c.timeouts > 0 {
			c.timeouts--
		}
		c.mu.Unlock()
		time.Sleep(5 * time.Millisecond) // stands for the poll timeout
		c.mu.Lock()
		return new(webcam.Timeout)
	}
	return nil
}
func (c *fakeCam) GetFrame() ([]byte, uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return nil, 0, syscall.ENODEV
	}
	if !c.streaming {
		return nil, 0, syscall.EINVAL
	}
	if len(c.frames) == 0 {
		return nil, 0, syscall.EAGAIN
	}
	i := c.next % uint32(len(c.buffers))
	if c.held[i] {
		return nil, 0, errors.New("test: buffer dequeued twice without ReleaseFrame")
	}
	c.next++
	c.buffers[i] = append(c.buffers[i][:0], c.frames[0]...)
	c.frames = c.frames[1:]
	c.held[i] = true
	return c.buffers[i], i, nil
}
func (c *fakeCam) ReleaseFrame(i uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held[i] {
		return syscall.EINVAL
	}
	c.held[i] = false
	c.released++
	// The driver refills the buffer at once.
	for k := range c.buffers[i] {
		c.buffers[i][k] = 0x5A
	}
	return nil
}
func (c *fakeCam) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.streaming = false
	return nil
}
func (c *fakeCam) push(frames ...[]byte) {
	c.mu.Lock()
	c.frames = append(c.frames, frames...)
	c.mu.Unlock()
}

func quietOpts() Options {
	return Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// camera makes a V4L2 source over the cams returned in turn by each
// open ("no such device" once they run out).
func camera(t *testing.T, opts Options, cams ...*fakeCam) (*V4L2, *int) {
	t.Helper()
	opens := 0
	opts.OpenDevice = func(path string) (Device, error) {
		if path != "/dev/video9" {
			t.Errorf("opened %q", path)
		}
		opens++
		if opens > len(cams) {
			return nil, syscall.ENOENT
		}
		return cams[opens-1], nil
	}
	src, err := OpenV4L2("/dev/video9", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src, &opens
}

func TestV4L2NegotiatesPreferredFormat(t *testing.T) {
	for _, tc := range []struct {
		offer []PixelFormat
		want  PixelFormat
	}{
		{[]PixelFormat{FormatNV12, FormatYUYV, FormatMJPEG}, FormatMJPEG},
		{[]PixelFormat{FormatNV12, FormatYUYV, 0x34325247 /* RGB3 */}, FormatYUYV},
		{[]PixelFormat{FormatNV12}, FormatNV12},
	} {
		cam := newFakeCam(tc.offer...)
		o := quietOpts()
		o.Width, o.Height, o.FPS = 600, 400, 15
		src, _ := camera(t, o, cam)
		n := src.Negotiated()
		if n.Format != tc.want || n.Width != 640 || n.Height != 480 {
			t.Errorf("offer %v: negotiated %+v, want %v 640x480", tc.offer, n, tc.want)
		}
		if cam.bufCount != 3 || cam.fps != 15 || !cam.streaming {
			t.Errorf("buffers %d fps %v streaming %v", cam.bufCount, cam.fps, cam.streaming)
		}
	}
	// Nothing readable.
	cam := newFakeCam(0x34325247)
	o := quietOpts()
	o.OpenDevice = func(string) (Device, error) { return cam, nil }
	if _, err := OpenV4L2("/dev/video9", o); err == nil || !strings.Contains(err.Error(), "no supported pixel format") {
		t.Errorf("RGB3-only camera: %v", err)
	} else if !cam.closed {
		t.Error("device left open after a failed negotiation")
	}
	o.Buffers = 8
	if _, err := OpenV4L2("/dev/video9", o); err == nil {
		t.Error("8 buffers accepted")
	}
}

func TestChooseSize(t *testing.T) {
	sizes := newFakeCam(FormatYUYV).sizes[webcam.PixelFormat(FormatYUYV)]
	for _, c := range []struct{ w, h, gw, gh int }{
		{640, 480, 640, 480}, {100, 100, 320, 240}, {1000, 500, 1280, 720}, {4000, 3000, 1280, 720},
	} {
		if gw, gh, _ := chooseSize(sizes, c.w, c.h); gw != c.gw || gh != c.gh {
			t.Errorf("want %dx%d: chose %dx%d, expected %dx%d", c.w, c.h, gw, gh, c.gw, c.gh)
		}
	}
	step := []webcam.FrameSize{{MinWidth: 160, MaxWidth: 1920, StepWidth: 16, MinHeight: 120, MaxHeight: 1080, StepHeight: 8}}
	if gw, gh, _ := chooseSize(step, 650, 481); gw != 640 || gh != 480 {
		t.Errorf("stepwise: %dx%d", gw, gh)
	}
	if _, _, ok := chooseSize(nil, 640, 480); ok {
		t.Error("no sizes: ok")
	}
}

func TestV4L2FramesYUYV(t *testing.T) {
	cam := newFakeCam(FormatYUYV)
	src, _ := camera(t, quietOpts(), cam)
	want := flatImage(640, 480)
	raw := encodeYUYV(want)
	cam.push(raw, raw)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 1; i <= 2; i++ {
		f, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq != uint64(i) || time.Since(f.Time) > time.Second {
			t.Errorf("frame %d: seq %d time %v", i, f.Seq, f.Time)
		}
		got := f.Image.(*image.RGBA)
		for k := range got.Pix {
			if d := int(got.Pix[k]) - int(want.Pix[k]); d < -2 || d > 2 {
				t.Fatalf("frame %d byte %d: %d, want %d (buffer not copied before release?)", i, k, got.Pix[k], want.Pix[k])
			}
		}
	}
	if cam.released != 2 {
		t.Errorf("released %d buffers, want 2", cam.released)
	}
}

func TestV4L2SkipsCorruptMJPEG(t *testing.T) {
	cam := newFakeCam(FormatMJPEG, FormatYUYV)
	src, _ := camera(t, quietOpts(), cam)
	var buf bytes.Buffer
	jpeg.Encode(&buf, pattern("smooth", 640, 480), nil)
	good := stripDHT(t, buf.Bytes())
	cam.push([]byte{}, good[:len(good)/3], []byte("garbage"), good)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Image.Bounds().Dx() != 640 || f.Seq != 1 {
		t.Errorf("got %v seq %d", f.Image.Bounds(), f.Seq)
	}
	if src.State() != StateOK {
		t.Error("state not ok")
	}
}

func TestV4L2VanishedDeviceReopens(t *testing.T) {
	cam1 := newFakeCam(FormatYUYV)
	cam2 := newFakeCam(FormatYUYV)
	frame := encodeYUYV(flatImage(640, 480))
	cam1.push(frame)
	cam2.push(frame, frame)
	var mu sync.Mutex
	var states []State
	o := quietOpts()
	o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 40*time.Millisecond
	o.OnState = func(s State) { mu.Lock(); states = append(states, s); mu.Unlock() }
	// Between cam1 and cam2 the device node is missing twice.
	opens := 0
	o.OpenDevice = func(string) (Device, error) {
		opens++
		switch opens {
		case 1:
			return cam1, nil
		case 2, 3:
			return nil, syscall.ENOENT
		case 4:
			return cam2, nil
		}
		return nil, syscall.ENOENT
	}
	src, err := OpenV4L2("/dev/video9", o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := src.Next(ctx)
	if err != nil || f.Seq != 1 {
		t.Fatalf("first frame: %v %v", f.Seq, err)
	}
	cam1.mu.Lock()
	cam1.gone = true
	cam1.mu.Unlock()
	start := time.Now()
	f, err = src.Next(ctx)
	if err != nil || f.Seq != 2 {
		t.Fatalf("after reopen: seq %d, %v", f.Seq, err)
	}
	// Backoff: 10ms, 20ms, 40ms before the 4th open.
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("reopened after %v: no backoff", el)
	}
	if !cam1.closed {
		t.Error("vanished device not closed")
	}
	if opens != 4 {
		t.Errorf("%d opens, want 4", opens)
	}
	mu.Lock()
	if len(states) != 2 || states[0] != StateLost || states[1] != StateOK {
		t.Errorf("states %v, want [lost ok]", states)
	}
	mu.Unlock()
	if src.State() != StateOK {
		t.Error("State() not ok")
	}
}

func TestV4L2StallReopens(t *testing.T) {
	cam1 := newFakeCam(FormatYUYV) // delivers nothing at all
	cam2 := newFakeCam(FormatYUYV)
	cam2.timeouts = 3 // a few timeouts are not a stall
	cam2.push(encodeYUYV(flatImage(640, 480)))
	o := quietOpts()
	o.StallTimeout = 100 * time.Millisecond
	o.MinBackoff = time.Millisecond
	var lost int
	o.OnState = func(s State) {
		if s == StateLost {
			lost++
		}
	}
	src, _ := camera(t, o, cam1, cam2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := src.Next(ctx)
	if err != nil || f.Seq != 1 {
		t.Fatalf("%v %v", f.Seq, err)
	}
	if lost != 1 || !cam1.closed {
		t.Errorf("lost reported %d times, cam1 closed %v", lost, cam1.closed)
	}
}

func TestV4L2WaitForDeviceAndContext(t *testing.T) {
	o := quietOpts()
	o.MinBackoff = 5 * time.Millisecond
	if _, err := OpenV4L2("/dev/video9", Options{OpenDevice: func(string) (Device, error) { return nil, syscall.ENOENT }}); err == nil ||
		!strings.Contains(err.Error(), "/dev/video9") {
		t.Errorf("missing device: %v", err)
	}
	o.WaitForDevice = true
	src, _ := camera(t, o) // never appears
	if src.State() != StateLost {
		t.Error("a device not yet there is not lost")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next = %v, want deadline", err)
	}
	// Close while Next waits.
	done := make(chan error)
	go func() { _, err := src.Next(context.Background()); done <- err }()
	time.Sleep(20 * time.Millisecond)
	src.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Next after Close = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end Next")
	}
}

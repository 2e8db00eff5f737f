package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Next once a source has been closed.
var ErrClosed = errors.New("capture: source closed")

// State is the health of a live source.
type State int

// The states of a live source.
const (
	StateOK   State = iota // frames are arriving
	StateLost              // the device or stream is gone or stalled; reopening
)

// String returns "ok" or "lost", as the MQTT status payload spells them.
func (s State) String() string {
	if s == StateLost {
		return "lost"
	}
	return "ok"
}

// Options tune a source. The zero value is valid.
type Options struct {
	// FPS is the frame rate: the camera's requested rate, and the pace
	// at which file:, dir: and synthetic: sources deliver frames (and,
	// for ffmpeg:, an output rate filter when positive). Default 5 for
	// the paced sources, the camera's own for v4l2:.
	FPS float64
	// Unpaced makes file:, dir: and synthetic: sources deliver frames as
	// fast as they are read, stamped 1/FPS apart from the open time (for
	// offline use).
	Unpaced bool
	// Once makes sources that can end (file:, dir:, synthetic:, ffmpeg:
	// on a local file) return io.EOF after one pass instead of repeating.
	Once bool
	// Width and Height request a camera frame size (v4l2:, default
	// 640x480; the nearest the device offers is taken) and set the
	// render size of synthetic: (Width, default 224).
	Width, Height int
	// Format forces a V4L2 pixel format; 0 prefers MJPEG, then YUYV,
	// then NV12.
	Format PixelFormat
	// Buffers is the V4L2 buffer count, 2 to 4 (default 3).
	Buffers int
	// StallTimeout is how long a live source may go without a frame
	// before it is reported lost and reopened (default 5s).
	StallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between reopen attempts
	// (defaults 250ms and 10s; the delay doubles on each failure).
	MinBackoff, MaxBackoff time.Duration
	// WaitForDevice makes a live source that cannot be opened at first
	// start in the lost state and keep trying, instead of failing Open.
	WaitForDevice bool
	// OnState is called (from the goroutine calling Next) whenever a
	// live source changes state.
	OnState func(State)
	// Logger receives warnings (reopen attempts, undecodable frames);
	// nil means slog.Default().
	Logger *slog.Logger
	// OpenDevice opens a V4L2 device; nil means the webcam library.
	// Tests pass a fake.
	OpenDevice func(path string) (Device, error)
	// FFmpeg is the ffmpeg binary (default "ffmpeg" from PATH).
	FFmpeg string
}

func (o *Options) fill() {
	if o.StallTimeout <= 0 {
		o.StallTimeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Buffers == 0 {
		o.Buffers = 3
	}
}

func (o *Options) pace() time.Duration {
	fps := o.FPS
	if fps <= 0 {
		fps = 5
	}
	return time.Duration(float64(time.Second) / fps)
}

// Open opens a frame source by spec with default options:
// "v4l2:/dev/video0", "file:PATH", "dir:PATH", "http:URL" (or the URL
// itself), "ffmpeg:URL" or "synthetic:SEED".
func Open(spec string) (Source, error) {
	return OpenWith(spec, Options{})
}

// OpenWith opens a frame source by spec (see Open) with options.
func OpenWith(spec string, opts Options) (Source, error) {
	opts.fill()
	kind, arg, ok := strings.Cut(spec, ":")
	if strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://") {
		kind, arg, ok = "http", spec, true
	}
	if !ok || arg == "" {
		return nil, fmt.Errorf("capture: source %q: want KIND:ARG with KIND v4l2, file, dir, http, ffmpeg or synthetic", spec)
	}
	switch kind {
	case "v4l2":
		return OpenV4L2(arg, opts)
	case "file":
		return openFile(arg, opts)
	case "dir":
		return openDir(arg, opts)
	case "http":
		return openHTTP(arg, opts)
	case "ffmpeg":
		return openFFmpeg(arg, opts)
	case "synthetic":
		seed, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("capture: source %q: seed %q is not an integer", spec, arg)
		}
		return openSynthetic(seed, opts)
	}
	return nil, fmt.Errorf("capture: source %q: unknown kind %q (want v4l2, file, dir, http, ffmpeg or synthetic)", spec, kind)
}

// StateReporter is implemented by live sources (v4l2:, http:, ffmpeg:)
// that can lose their device or stream.
type StateReporter interface {
	State() State
}

// stream is one open connection of a live source.
type stream interface {
	// next returns the next frame's image and capture time. io.EOF means
	// a finite input ended; any other error means the stream is gone (it
	// is then closed and reopened).
	next(ctx context.Context) (image.Image, time.Time, error)
	close() error
}

// live wraps a stream that can fail with reopening, backoff and state
// reporting.
type live struct {
	name string
	open func(ctx context.Context) (stream, error)
	opts Options

	mu      sync.Mutex // held by Next and Close
	cur     stream
	seq     uint64
	backoff time.Duration
	retryAt time.Time
	closed  atomic.Bool
	ended   bool            // a finite input ended: Next keeps returning io.EOF
	ctx     context.Context // the source's lifetime, ended by Close
	cancel  context.CancelFunc

	stateMu sync.Mutex
	state   State
}

func newLive(name string, opts Options, open func(ctx context.Context) (stream, error)) (*live, error) {
	l := &live{name: name, open: open, opts: opts}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	s, err := open(l.ctx)
	if err != nil {
		if !opts.WaitForDevice {
			l.cancel()
			return nil, err
		}
		opts.Logger.Warn("capture: source not available, will retry", "source", name, "err", err)
		l.setState(StateLost)
		l.backoff = opts.MinBackoff
		l.retryAt = time.Now().Add(l.backoff)
	}
	l.cur = s
	return l, nil
}

// State reports whether frames are arriving.
func (l *live) State() State {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return l.state
}

func (l *live) setState(s State) {
	l.stateMu.Lock()
	changed := l.state != s
	l.state = s
	l.stateMu.Unlock()
	if changed {
		if s == StateLost {
			l.opts.Logger.Warn("capture: camera lost", "source", l.name)
		} else {
			l.opts.Logger.Info("capture: camera ok", "source", l.name)
		}
		if l.opts.OnState != nil {
			l.opts.OnState(s)
		}
	}
}

// Next returns the next frame, reopening the stream with backoff while
// it is lost. It returns io.EOF when a finite input ended.
func (l *live) Next(ctx context.Context) (Frame, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	outer := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	for {
		if l.closed.Load() {
			return Frame{}, ErrClosed
		}
		if err := outer.Err(); err != nil {
			return Frame{}, err
		}
		if l.ended {
			return Frame{}, io.EOF
		}
		if l.cur == nil {
			if wait := time.Until(l.retryAt); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					continue // closed or outer ctx ended: checked above
				}
			}
			s, err := l.open(l.ctx)
			if err != nil {
				l.fail(err)
				continue
			}
			l.cur = s
		}
		img, at, err := l.cur.next(ctx)
		if err != nil {
			if l.closed.Load() {
				return Frame{}, ErrClosed
			}
			if outer.Err() != nil {
				// Interrupted, not failed: keep the stream.
				return Frame{}, outer.Err()
			}
			l.cur.close()
			l.cur = nil
			if errors.Is(err, io.EOF) {
				l.ended = true
				return Frame{}, io.EOF
			}
			if errors.Is(err, errReplay) {
				continue // a finished file starts again, no backoff
			}
			l.fail(err)
			continue
		}
		l.backoff = 0
		l.setState(StateOK)
		l.seq++
		return Frame{Image: img, Time: at, Seq: l.seq}, nil
	}
}

// fail records a lost stream and schedules the next attempt.
func (l *live) fail(err error) {
	if l.backoff == 0 {
		l.backoff = l.opts.MinBackoff
	} else {
		l.backoff = min(2*l.backoff, l.opts.MaxBackoff)
	}
	l.retryAt = time.Now().Add(l.backoff)
	l.opts.Logger.Warn("capture: source failed, reopening", "source", l.name, "err", err, "retry_in", l.backoff)
	l.setState(StateLost)
}

// Close stops the source; a Next in progress returns ErrClosed.
func (l *live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		err := l.cur.close()
		l.cur = nil
		return err
	}
	return nil
}

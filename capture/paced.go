package capture

import (
	"context"
	"fmt"
	"image"
	_ "image/gif" // file: and dir: read GIF
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/palid/palid/capture/synth"
)

// paced delivers the frames that get yields, one per interval (or
// unpaced with timestamps an interval apart).
type paced struct {
	mu       sync.Mutex
	get      func(i int) (image.Image, error) // io.EOF past the end
	n        int                              // frames in one pass; 0 means endless
	once     bool
	unpaced  bool
	interval time.Duration
	start    time.Time
	i        int    // frames attempted
	seq      uint64 // frames delivered
	closed   bool
}

func (p *paced) Next(ctx context.Context) (Frame, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Frame{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	if p.once && p.n > 0 && p.i >= p.n {
		return Frame{}, io.EOF
	}
	due := p.start.Add(time.Duration(p.i) * p.interval)
	if p.i == 0 {
		p.start = time.Now()
		due = p.start
	}
	at := due
	if !p.unpaced {
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return Frame{}, ctx.Err()
			}
		} else if wait < -p.interval {
			// The reader fell behind: restart the schedule rather than
			// delivering a burst.
			p.start = time.Now().Add(-time.Duration(p.i) * p.interval)
		}
		at = time.Now()
	}
	k := p.i
	if p.n > 0 {
		k %= p.n
	}
	img, err := p.get(k)
	p.i++ // a file that fails is skipped by the next call
	if err != nil {
		return Frame{}, err
	}
	p.seq++
	return Frame{Image: img, Time: at, Seq: p.seq}, nil
}

func (p *paced) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// LoadImage decodes a JPEG, PNG or GIF file.
func LoadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("capture: %s: %v", path, err)
	}
	if cfg.Width > MaxDimension || cfg.Height > MaxDimension {
		return nil, fmt.Errorf("capture: %s: image is %dx%d, larger than %d on a side", path, cfg.Width, cfg.Height, MaxDimension)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("capture: %s: %v", path, err)
	}
	return img, nil
}

func openFile(path string, opts Options) (Source, error) {
	img, err := LoadImage(path)
	if err != nil {
		return nil, err
	}
	return &paced{
		get:      func(int) (image.Image, error) { return img, nil },
		n:        1,
		once:     opts.Once,
		unpaced:  opts.Unpaced,
		interval: opts.pace(),
	}, nil
}

// ImageFiles lists the JPEG, PNG and GIF files of dir in name order.
func ImageFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".jpg", ".jpeg", ".png", ".gif":
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("capture: %s: no .jpg, .jpeg, .png or .gif files", dir)
	}
	return names, nil
}

func openDir(dir string, opts Options) (Source, error) {
	names, err := ImageFiles(dir)
	if err != nil {
		return nil, err
	}
	return &paced{
		get:      func(i int) (image.Image, error) { return LoadImage(names[i]) },
		n:        len(names),
		once:     opts.Once,
		unpaced:  opts.Unpaced,
		interval: opts.pace(),
	}, nil
}

// openSynthetic plays the frames of synth.NewClip(seed), rendered at
// opts.Width (default 224) pixels square, in a loop. The clip renders in
// the background so that Open returns at once.
func openSynthetic(seed int64, opts Options) (Source, error) {
	size := opts.Width
	if size <= 0 {
		size = 224
	}
	if size > MaxDimension {
		return nil, fmt.Errorf("capture: synthetic size %d larger than %d", size, MaxDimension)
	}
	clip := synth.NewClip(seed)
	ready := make(chan struct{})
	var frames []*image.RGBA
	go func() {
		frames = clip.Frames(size)
		close(ready)
	}()
	p := &paced{
		once:     opts.Once,
		unpaced:  opts.Unpaced,
		interval: opts.pace(),
	}
	p.get = func(i int) (image.Image, error) {
		<-ready
		if len(frames) == 0 {
			return nil, fmt.Errorf("capture: synthetic clip %d has no frames", seed)
		}
		p.n = len(frames)
		return frames[i%len(frames)], nil
	}
	return p, nil
}

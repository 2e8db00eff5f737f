package capture

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestPump(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"a.png", "b.png", "c.png"} {
		writePNG(t, filepath.Join(dir, name), pattern("smooth", 10+i, 10))
	}
	os.WriteFile(filepath.Join(dir, "b2.png"), []byte("broken"), 0o644) // between b and c
	src, err := OpenWith("dir:"+dir, Options{Unpaced: true, Once: true, Logger: quietOpts().Logger})
	if err != nil {
		t.Fatal(err)
	}
	ring := NewRing(1 << 20)
	var calls atomic.Int32
	err = Pump(context.Background(), src, ring, func(Frame) { calls.Add(1) }, quietOpts().Logger)
	if err != io.EOF {
		t.Fatalf("Pump = %v, want io.EOF", err)
	}
	fs := ring.Frames()
	if len(fs) != 3 || calls.Load() != 3 {
		t.Fatalf("%d frames in ring, %d callbacks; want 3", len(fs), calls.Load())
	}
	for i, f := range fs {
		if f.Seq != uint64(i+1) || f.Image.Bounds().Dx() != 10+i {
			t.Errorf("frame %d: seq %d width %d", i, f.Seq, f.Image.Bounds().Dx())
		}
	}
	// A cancelled context ends an endless source.
	src, _ = OpenWith("synthetic:1", Options{Width: 32, FPS: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := Pump(ctx, src, ring, nil, nil); err != context.DeadlineExceeded {
		t.Errorf("Pump = %v", err)
	}
	if f, _ := ring.Latest(); f.Image.Bounds().Dx() != 32 {
		t.Error("synthetic frames not pumped")
	}
}

//go:build hwtest

package hwtests

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/blackjack/webcam"
	"github.com/palid/palid/capture"
)

// cameraPath is the device under test; PALID_CAMERA overrides it.
func cameraPath(t testing.TB) string {
	p := os.Getenv("PALID_CAMERA")
	if p == "" {
		p = "/dev/video0"
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no camera at %s (%v): set PALID_CAMERA to a V4L2 capture device to run this test", p, err)
	}
	return p
}

// offered lists the readable pixel formats the camera offers.
func offered(t *testing.T, path string) []capture.PixelFormat {
	cam, err := webcam.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer cam.Close()
	var out []capture.PixelFormat
	formats := cam.GetSupportedFormats()
	for _, f := range []capture.PixelFormat{capture.FormatMJPEG, capture.FormatYUYV, capture.FormatNV12} {
		if _, ok := formats[webcam.PixelFormat(f)]; ok {
			out = append(out, f)
		}
	}
	t.Logf("%s offers %v; capture reads %v", path, formats, out)
	return out
}

// TestCameraFrames reads frames from the real camera in every format it
// offers that capture reads, and checks what the fake-device tests in
// capture/ check: the negotiated size, increasing sequence numbers and
// times, decodable frames, and model input in [-1, 1].
func TestCameraFrames(t *testing.T) {
	path := cameraPath(t)
	formats := offered(t, path)
	if len(formats) == 0 {
		t.Skipf("%s offers none of MJPEG, YUYV, NV12", path)
	}
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			var states []capture.State
			src, err := capture.OpenV4L2(path, capture.Options{Format: f, Width: 640, Height: 480, FPS: 15,
				OnState: func(s capture.State) { states = append(states, s) }})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			neg := src.Negotiated()
			t.Logf("negotiated %+v", neg)
			if neg.Format != f || neg.Width <= 0 || neg.Height <= 0 {
				t.Fatalf("negotiated %+v", neg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ring := capture.NewRing(64 << 20)
			var prev capture.Frame
			start := time.Now()
			for i := 1; i <= 20; i++ {
				fr, err := src.Next(ctx)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if b := fr.Image.Bounds(); b.Dx() != neg.Width || b.Dy() != neg.Height {
					t.Fatalf("frame %d is %v, negotiated %dx%d", i, b, neg.Width, neg.Height)
				}
				if fr.Seq != prev.Seq+1 || (i > 1 && !fr.Time.After(prev.Time)) {
					t.Fatalf("frame %d: seq %d time %v after seq %d time %v", i, fr.Seq, fr.Time, prev.Seq, prev.Time)
				}
				px := capture.Normalize(fr.Image, 224, 224)
				for _, v := range px {
					if v < -1 || v > 1 {
						t.Fatalf("frame %d: normalised value %v", i, v)
					}
				}
				ring.Add(fr)
				prev = fr
			}
			fps := 19 / time.Since(start).Seconds()
			t.Logf("%.1f frames/s", fps)
			w, err := ring.Window(8, capture.Stride{Frames: 2})
			if err != nil || len(w.Frames) != 8 {
				t.Fatalf("window: %d frames, %v", len(w.Frames), err)
			}
			if src.State() != capture.StateOK || len(states) != 0 {
				t.Errorf("state %v, changes %v", src.State(), states)
			}
		})
	}
}

// BenchmarkCameraFrame measures a camera frame to model input on the
// device: wait, copy, decode, resize and normalise.
func BenchmarkCameraFrame(b *testing.B) {
	path := cameraPath(b)
	src, err := capture.OpenV4L2(path, capture.Options{Width: 640, Height: 480})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.Logf("negotiated %+v", src.Negotiated())
	ctx := context.Background()
	for b.Loop() {
		fr, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		capture.Normalize(fr.Image, 224, 224)
	}
}

package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palid/palid/capture/synth"
)

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestOpenSpecErrors(t *testing.T) {
	for _, spec := range []string{"", "video0", "v4l2:", "bogus:x", "synthetic:abc", "file:/no/such/file.png",
		"dir:/no/such/dir", "http:ftp://x", "v4l2:/dev/no-such-video"} {
		src, err := Open(spec)
		if err == nil {
			src.Close()
			t.Errorf("Open(%q): no error", spec)
			continue
		}
		if !strings.HasPrefix(err.Error(), "capture: ") {
			t.Errorf("Open(%q): error %q lacks the package prefix", spec, err)
		}
	}
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.png")
	want := pattern("noise", 30, 20)
	writePNG(t, p, want)
	src, err := OpenWith("file:"+p, Options{FPS: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := ctxT(t, 5*time.Second)
	start := time.Now()
	var last Frame
	for i := 1; i <= 4; i++ {
		f, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq != uint64(i) || !f.Time.After(last.Time) {
			t.Errorf("frame %d: seq %d time %v", i, f.Seq, f.Time)
		}
		last = f
	}
	// 4 frames at 50 fps: 3 intervals of 20 ms.
	if el := time.Since(start); el < 55*time.Millisecond {
		t.Errorf("4 frames at 50 fps took %v", el)
	}
	got := Normalize(last.Image, 30, 20)
	exp := Normalize(want, 30, 20)
	for i := range got {
		if got[i] != exp[i] {
			t.Fatal("file source image differs from what was written")
		}
	}
	src.Close()
	if _, err := src.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	// Once: one frame, then EOF.
	src, _ = OpenWith("file:"+p, Options{Once: true})
	if _, err := src.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(ctx); err != io.EOF {
		t.Errorf("second Next under Once: %v", err)
	}
	// Not an image.
	os.WriteFile(filepath.Join(dir, "b.png"), []byte("not a png"), 0o644)
	if _, err := Open("file:" + filepath.Join(dir, "b.png")); err == nil || !strings.Contains(err.Error(), "b.png") {
		t.Errorf("bad image: %v", err)
	}
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	// Written out of order; sizes tell them apart.
	for _, n := range []int{3, 1, 2} {
		writePNG(t, filepath.Join(dir, fmt.Sprintf("f%02d.png", n)), pattern("smooth", 10*n, 8))
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, pattern("smooth", 40, 8), nil)
	os.WriteFile(filepath.Join(dir, "f04.JPG"), buf.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub.png"), 0o755)

	src, err := OpenWith("dir:"+dir, Options{Unpaced: true, Once: true, FPS: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Second)
	var widths []int
	var times []time.Time
	for {
		f, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		widths = append(widths, f.Image.Bounds().Dx())
		times = append(times, f.Time)
	}
	if fmt.Sprint(widths) != "[10 20 30 40]" {
		t.Errorf("widths %v, want name order [10 20 30 40]", widths)
	}
	if d := times[3].Sub(times[0]); d != 300*time.Millisecond {
		t.Errorf("unpaced stamps span %v, want 300ms at 10 fps", d)
	}
	// Looping (the default) comes back to the first image.
	src, _ = OpenWith("dir:"+dir, Options{Unpaced: true})
	for i := 0; i < 5; i++ {
		f, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 4 && f.Image.Bounds().Dx() != 10 {
			t.Errorf("fifth frame is %d wide, want the first again", f.Image.Bounds().Dx())
		}
	}
	empty := t.TempDir()
	if _, err := Open("dir:" + empty); err == nil {
		t.Error("empty directory accepted")
	}
}

func TestSyntheticSource(t *testing.T) {
	src, err := OpenWith("synthetic:7", Options{Width: 96, Unpaced: true, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	want := synth.NewClip(7).Frames(96)
	ctx := ctxT(t, 10*time.Second)
	n := 0
	for {
		f, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Image.(*image.RGBA).Pix, want[n].Pix) {
			t.Fatalf("frame %d differs from synth.NewClip(7).Frames(96)[%d]", n, n)
		}
		n++
	}
	if n != len(want) || n < 16 {
		t.Errorf("%d frames, clip has %d", n, len(want))
	}
}

// mjpegServer serves frames as multipart/x-mixed-replace, the way IP
// cameras do; boundaryHeader is what the Content-Type says and
// boundaryBody what separates the parts.
func mjpegServer(t *testing.T, frames [][]byte, boundaryHeader, boundaryBody string, hang bool) *httptest.Server {
	return mjpegServerLen(t, frames, boundaryHeader, boundaryBody, hang, true)
}

func mjpegServerLen(t *testing.T, frames [][]byte, boundaryHeader, boundaryBody string, hang, withLength bool) *httptest.Server {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundaryHeader)
		for _, f := range frames {
			if withLength {
				fmt.Fprintf(w, "%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", boundaryBody, len(f))
			} else {
				fmt.Fprintf(w, "%s\r\nContent-Type: image/jpeg\r\n\r\n", boundaryBody)
			}
			w.Write(f)
			w.Write([]byte("\r\n"))
			w.(http.Flusher).Flush()
		}
		if !withLength {
			fmt.Fprintf(w, "%s--\r\n", boundaryBody)
		}
		if hang {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jpegOf(t testing.TB, img image.Image) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHTTPMJPEG(t *testing.T) {
	frames := [][]byte{jpegOf(t, pattern("smooth", 64, 48)), []byte("broken"), jpegOf(t, pattern("smooth", 32, 24)), stripDHT(t, jpegOf(t, pattern("smooth", 16, 8)))}
	for _, b := range []struct {
		header, body string
		length       bool
	}{
		{"frame", "--frame", true},   // RFC 2046
		{"--frame", "--frame", true}, // header already holds the dashes (common)
		{"myboundary", "--myboundary", false},
	} {
		srv := mjpegServerLen(t, frames, b.header, b.body, false, b.length)
		o := quietOpts()
		o.MinBackoff = 5 * time.Millisecond
		var lost atomic.Int32
		o.OnState = func(s State) {
			if s == StateLost {
				lost.Add(1)
			}
		}
		src, err := OpenWith("http:"+srv.URL+"/video", o)
		if err != nil {
			t.Fatal(err)
		}
		ctx := ctxT(t, 5*time.Second)
		var widths []int
		for i := 0; i < 6; i++ {
			f, err := src.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			widths = append(widths, f.Image.Bounds().Dx())
		}
		// The broken part is skipped; the stream ends and is reopened.
		if fmt.Sprint(widths) != "[64 32 16 64 32 16]" {
			t.Errorf("boundary %q/%q: widths %v", b.header, b.body, widths)
		}
		if lost.Load() == 0 || src.(StateReporter).State() != StateOK {
			t.Errorf("end of stream not reported lost, or not back to ok")
		}
		src.Close()
	}
}

func TestHTTPStallAndErrors(t *testing.T) {
	srv := mjpegServer(t, [][]byte{jpegOf(t, pattern("smooth", 8, 8))}, "b", "--b", true)
	o := quietOpts()
	o.StallTimeout = 100 * time.Millisecond
	o.MinBackoff = 5 * time.Millisecond
	src, err := OpenWith(srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := ctxT(t, 5*time.Second)
	if _, err := src.Next(ctx); err != nil {
		t.Fatal(err)
	}
	// The server hangs: a stall, reopen, and the first frame again.
	start := time.Now()
	if _, err := src.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Error("stall not waited for")
	}

	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	if _, err := Open("http:" + notFound.URL); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	text := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") }))
	defer text.Close()
	if _, err := Open("http:" + text.URL); err == nil || !strings.Contains(err.Error(), "Content-Type") {
		t.Errorf("text/plain: %v", err)
	}
}

func TestHTTPSnapshot(t *testing.T) {
	img := jpegOf(t, pattern("smooth", 20, 10))
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(img)
	}))
	defer srv.Close()
	src, err := OpenWith("http:"+srv.URL, Options{FPS: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := ctxT(t, 5*time.Second)
	for i := 0; i < 3; i++ {
		f, err := src.Next(ctx)
		if err != nil || f.Image.Bounds().Dx() != 20 {
			t.Fatal(f, err)
		}
	}
	if hits.Load() < 3 {
		t.Errorf("%d requests for 3 snapshots", hits.Load())
	}
}

func TestReadJPEG(t *testing.T) {
	a, b := jpegOf(t, pattern("noise", 33, 17)), jpegOf(t, pattern("smooth", 8, 8))
	stream := append(append(append([]byte("junk\xff\x00"), a...), b...), a[:50]...)
	br := bufio.NewReader(bytes.NewReader(stream))
	for i, want := range [][]byte{a, b} {
		got, err := ReadJPEG(br, 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("image %d: %d bytes, %v", i, len(got), err)
		}
	}
	if _, err := ReadJPEG(br, 1<<20); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated: %v", err)
	}
	if _, err := ReadJPEG(br, 1<<20); err != io.EOF {
		t.Errorf("end: %v", err)
	}
	if _, err := ReadJPEG(bufio.NewReader(bytes.NewReader(a)), 100); err == nil {
		t.Error("limit not enforced")
	}
}

func FuzzReadJPEG(f *testing.F) {
	f.Add(jpegOf(f, pattern("smooth", 8, 8)))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0x00, 0xFF, 0xD9})
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < len(data); i++ {
			img, err := ReadJPEG(br, 1<<16)
			if err != nil {
				return
			}
			if len(img) < 4 || img[0] != 0xFF || img[1] != 0xD8 || img[len(img)-2] != 0xFF || img[len(img)-1] != 0xD9 {
				t.Fatalf("not SOI..EOI: % x", img)
			}
		}
	})
}

func needFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (apt-get install ffmpeg)")
	}
}

// TestFFmpegSource makes a short video with ffmpeg and reads it back.
func TestFFmpegSource(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	video := filepath.Join(dir, "clip.mp4")
	// 12 frames of testsrc at 10 fps, 160x120.
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
		"testsrc=size=160x120:rate=10:duration=1.2", "-pix_fmt", "yuv420p", video).CombinedOutput()
	if err != nil {
		t.Fatalf("making the video: %v: %s", err, out)
	}
	src, err := OpenWith("ffmpeg:"+video, Options{Unpaced: true, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := ctxT(t, 20*time.Second)
	n := 0
	for {
		f, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if b := f.Image.Bounds(); b.Dx() != 160 || b.Dy() != 120 || f.Seq != uint64(n) {
			t.Fatalf("frame %d: %v seq %d", n, b, f.Seq)
		}
		if n == 1 {
			// testsrc's top-left region is not flat grey: the frame has content.
			px := Normalize(f.Image, 16, 12)
			lo, hi := px[0], px[0]
			for _, v := range px {
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi-lo < 1 {
				t.Errorf("first frame nearly flat (%v..%v)", lo, hi)
			}
		}
	}
	if n != 12 {
		t.Errorf("%d frames, want 12", n)
	}
	if _, err := src.Next(ctx); err != io.EOF {
		t.Errorf("Next after the end: %v", err)
	}
	// Without Once the file replays, with no loss reported.
	var lost atomic.Int32
	o := quietOpts()
	o.Unpaced = true
	o.OnState = func(s State) { lost.Add(1) }
	loop, err := OpenWith("ffmpeg:"+video, o)
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	for i := 1; i <= 15; i++ {
		f, err := loop.Next(ctx)
		if err != nil || f.Seq != uint64(i) {
			t.Fatalf("replay frame %d: seq %d, %v", i, f.Seq, err)
		}
	}
	if lost.Load() != 0 {
		t.Error("replaying a file reported the camera lost")
	}
	// A missing input fails at open with ffmpeg's own message.
	if _, err := Open("ffmpeg:" + filepath.Join(dir, "missing.mp4")); err == nil || !strings.Contains(err.Error(), "missing.mp4") {
		t.Errorf("missing input: %v", err)
	}
}

// FuzzMJPEGParts feeds arbitrary bodies to the multipart splitter.
func FuzzMJPEGParts(f *testing.F) {
	img := jpegOf(f, pattern("smooth", 8, 8))
	f.Add("b", append(append([]byte("--b\r\nContent-Length: "+fmt.Sprint(len(img))+"\r\n\r\n"), img...), "\r\n--b--\r\n"...))
	f.Add("b", append(append([]byte("--b\r\nContent-Type: image/jpeg\r\n\r\n"), img...), "\r\n--b\r\n\r\nxx\r\n--b--"...))
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		br := bufio.NewReader(bytes.NewReader(body))
		pr := &partReader{br: br, tp: textproto.NewReader(br), delim: "--" + boundary}
		for i := 0; i <= len(body); i++ {
			data, err := pr.next()
			if err != nil {
				return
			}
			if len(data) > len(body) {
				t.Fatalf("part of %d bytes from a %d-byte body", len(data), len(body))
			}
		}
		t.Fatal("more parts than bytes")
	})
}

package delegate

import (
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	palirt "github.com/palid/palid/runtime"
)

func TestOpenVersion(t *testing.T) {
	l := openLib(t)
	if v := l.Version(); !strings.HasPrefix(v, "2.") {
		t.Fatalf("TfLiteVersion = %q, want 2.x", v)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "libnot.so")
	os.WriteFile(text, []byte("this is not an ELF file\n"), 0o644)
	// A real shared library that lacks most of the C API.
	partial := buildC(t, "partial", `const char* TfLiteVersion(void) { return "0.0"; }
void* TfLiteModelCreate(const void* p, unsigned long n) { return 0; }
`)
	for _, c := range []struct{ path, want string }{
		{"", "no library path"},
		{filepath.Join(dir, "absent.so"), "no such file"},
		{dir, "cannot load"},
		{text, "cannot load " + text},
		{partial, "missing symbol TfLiteModelDelete"},
	} {
		_, err := Open(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", c.path, err, c.want)
		}
	}
}

func TestLoadModelErrors(t *testing.T) {
	l := openLib(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.tflite")
	os.WriteFile(garbage, []byte(strings.Repeat("not a flatbuffer ", 64)), 0o644)
	empty := filepath.Join(dir, "empty.tflite")
	os.WriteFile(empty, nil, 0o644)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "absent.tflite"), "no such file"},
		{dir, "not a regular file"},
		{garbage, "not a valid TFLite model"},
		{empty, "not a valid TFLite model"},
	} {
		m, err := l.LoadModel(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			if m != nil {
				m.Close()
			}
			t.Errorf("LoadModel(%q) = %v, want an error containing %q", c.path, err, c.want)
		}
	}
}

// faceModel is MediaPipe's BlazeFace short-range detector from npm.
func faceModel(t *testing.T) string {
	p := os.Getenv("PALID_TFLITE_FACE")
	if p == "" {
		p = filepath.Join(tfliteCache(t), "mediapipe", "package", "face_detection_short_range.tflite")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("face model %s absent although the library is there: run scripts/tflite.sh", p)
	}
	return p
}

func sigmoid(x float32) float64 { return 1 / (1 + math.Exp(-float64(x))) }

// TestFaceDetection runs a real third-party model through the binding:
// MediaPipe's BlazeFace (short range), 128x128 RGB in [-1, 1], 896 anchors.
func TestFaceDetection(t *testing.T) {
	l := openLib(t)
	m, err := l.LoadModel(faceModel(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	it, err := l.NewInterpreter(m, InterpreterOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if n := len(it.Inputs()); n != 1 {
		t.Fatalf("%d inputs, want 1", n)
	}
	in := it.Inputs()[0]
	if s := in.Shape(); len(s) != 4 || s[0] != 1 || s[1] != 128 || s[2] != 128 || s[3] != 3 || in.Type() != Float32 {
		t.Fatalf("input %s is %v %v, want float32 [1 128 128 3]", in.Name(), in.Type(), s)
	}
	outs := it.Outputs()
	if len(outs) != 2 {
		t.Fatalf("%d outputs, want 2 (regressors, classificators)", len(outs))
	}
	var boxes, scores *Tensor
	for _, o := range outs {
		switch s := o.Shape(); {
		case len(s) == 3 && s[1] == 896 && s[2] == 16:
			boxes = o
		case len(s) == 3 && s[1] == 896 && s[2] == 1:
			scores = o
		}
	}
	if boxes == nil || scores == nil {
		t.Fatalf("outputs %v %v, want [1 896 16] and [1 896 1]", outs[0].Shape(), outs[1].Shape())
	}

	run := func(img image.Image) (box, score []float32) {
		t.Helper()
		pix, err := frameHWC(palirt.Image{Width: 128, Height: 128, Pix: capture.Normalize(img, 128, 128)}, 128)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.SetFloat32s(pix); err != nil {
			t.Fatal(err)
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		if box, err = boxes.Float32s(); err != nil {
			t.Fatal(err)
		}
		if score, err = scores.Float32s(); err != nil {
			t.Fatal(err)
		}
		return box, score
	}
	// A synthetic scene holds shapes and text, no face: every anchor's
	// score stays below MediaPipe's 0.5 threshold.
	scene := synth.NewScene(7).Render(128)
	box, score := run(scene)
	best := 0.0
	for _, s := range score {
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			t.Fatalf("score %v", s)
		}
		best = max(best, sigmoid(s))
	}
	if best >= 0.5 {
		t.Errorf("best face score on a faceless synthetic scene is %.3f, want < 0.5", best)
	}
	for i, v := range box {
		// Box offsets are in pixels of the 128-pixel input.
		if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 1000 {
			t.Fatalf("regressor %d = %v, not a sane pixel offset", i, v)
		}
	}
	// A cartoon face (skin disc, two eyes, a mouth) scores far higher than
	// the scene: the model computes, it does not return constants.
	face := image.NewRGBA(image.Rect(0, 0, 128, 128))
	fill := func(cx, cy, rx, ry float64, c color.RGBA) {
		for y := 0; y < 128; y++ {
			for x := 0; x < 128; x++ {
				dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
				if dx*dx+dy*dy <= 1 {
					face.SetRGBA(x, y, c)
				}
			}
		}
	}
	fill(64, 64, 64, 64, color.RGBA{90, 120, 150, 255})
	fill(64, 66, 34, 44, color.RGBA{224, 172, 140, 255})
	fill(51, 54, 6, 4, color.RGBA{40, 30, 30, 255})
	fill(77, 54, 6, 4, color.RGBA{40, 30, 30, 255})
	fill(64, 86, 12, 4, color.RGBA{150, 60, 60, 255})
	_, fscore := run(face)
	fbest := 0.0
	for _, s := range fscore {
		fbest = max(fbest, sigmoid(s))
	}
	t.Logf("best face score: scene %.4f, cartoon face %.4f", best, fbest)
	if fbest < 0.5 {
		t.Errorf("cartoon face scores %.4f, below MediaPipe's 0.5 threshold (faceless scene %.4f)", fbest, best)
	}
	// Same input, same output.
	box2, _ := run(scene)
	for i := range box {
		if box[i] != box2[i] {
			t.Fatalf("regressor %d differs between two runs on the same image: %v, %v", i, box[i], box2[i])
		}
	}
}

//go:build hwtest

package hwtests

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	"github.com/palid/palid/delegate"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// The NPU checks read their paths from the environment:
//
//	PALID_NPU_TFLITE_LIB      the device's libtensorflowlite_c.so
//	PALID_NPU_DELEGATE        the vendor delegate (/usr/lib/libvx_delegate.so,
//	                          libedgetpu.so.1, libarmnnDelegate.so)
//	PALID_NPU_DELEGATE_OPTIONS  its options, "key=value;key=value"
//	PALID_NPU_MODEL           a palid model directory (default: a random tiny
//	                          model, enough to check the mechanics)
//	PALID_NPU_VISION          an exported vision .tflite (default: exported
//	                          here from the model; Edge TPU needs its
//	                          edgetpu_compiler output instead)
//	PALID_NPU_FACE            MediaPipe's face_detection_short_range.tflite
type npuEnv struct {
	lib, dlg string
	opts     map[string]string
}

func npu(t *testing.T) npuEnv {
	t.Helper()
	e := npuEnv{lib: os.Getenv("PALID_NPU_TFLITE_LIB"), dlg: os.Getenv("PALID_NPU_DELEGATE")}
	if e.lib == "" || e.dlg == "" {
		t.Skip("no NPU configured: set PALID_NPU_TFLITE_LIB and PALID_NPU_DELEGATE (see docs/npu.md)")
	}
	for _, p := range []string{e.lib, e.dlg} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("NPU library absent: %v", err)
		}
	}
	e.opts = map[string]string{}
	for _, kv := range strings.Split(os.Getenv("PALID_NPU_DELEGATE_OPTIONS"), ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			e.opts[k] = v
		}
	}
	return e
}

func npuModel(t *testing.T) *palirt.Model {
	dir := os.Getenv("PALID_NPU_MODEL")
	if dir == "" {
		dir = t.TempDir()
		if err := palirt.WriteRandomModel(dir, "tiny", neon.Q8_0, 3); err != nil {
			t.Fatal(err)
		}
	}
	m, err := palirt.Load(dir, palirt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func frames(n int, seed int64, size int) []palirt.Image {
	out := make([]palirt.Image, n)
	for i := range out {
		out[i] = palirt.Image{Width: size, Height: size,
			Pix: capture.Normalize(synth.NewScene(seed+int64(i)).Render(size), size, size)}
	}
	return out
}

// TestNPUVisionTower runs the exported tower through the vendor delegate
// and checks it against the CPU path, as the auto backend does at start-up.
func TestNPUVisionTower(t *testing.T) {
	e := npu(t)
	m := npuModel(t)
	vision := os.Getenv("PALID_NPU_VISION")
	if vision == "" {
		data, rep, err := delegate.ExportVision(context.Background(), m.VisionTower(),
			delegate.ExportOptions{Calibration: frames(32, 1, m.ImageSize())})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("exported %d operators: %s", rep.NumOps, rep.Ops)
		vision = filepath.Join(t.TempDir(), "vision.tflite")
		if err := os.WriteFile(vision, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := delegate.Config{Backend: delegate.BackendTFLite, Library: e.lib, Model: vision,
		Delegate: e.dlg, DelegateOptions: e.opts}
	b, err := delegate.Select(context.Background(), cfg, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	nb := b.(*delegate.TFLite)
	check := frames(16, 5000, m.ImageSize())
	cos, err := delegate.SelfCheck(context.Background(), nb, m, check)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: mean token cosine %.4f against the CPU over %d frames", b.Name(), cos, len(check))
	if cos < delegate.DefaultMinCosine {
		t.Errorf("NPU agreement %.4f below %.2f", cos, delegate.DefaultMinCosine)
	}
	// Speed, for the record (not a pass/fail figure).
	for _, vb := range []delegate.VisionBackend{b, delegate.NewCPU(m)} {
		start := time.Now()
		for _, img := range check {
			if _, err := vb.EncodeImage(context.Background(), img); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %.1f ms per frame", vb.Name(), float64(time.Since(start).Microseconds())/1000/float64(len(check)))
	}
	// auto picks the NPU.
	cfg.Backend = delegate.BackendAuto
	a, err := delegate.Select(context.Background(), cfg, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Name() == delegate.BackendCPU {
		t.Errorf("auto fell back to the CPU on the device")
	}
}

// TestNPUFaceDetection runs MediaPipe's face detector through the delegate.
func TestNPUFaceDetection(t *testing.T) {
	e := npu(t)
	face := os.Getenv("PALID_NPU_FACE")
	if face == "" {
		t.Skip("PALID_NPU_FACE not set (face_detection_short_range.tflite from npm @mediapipe/face_detection)")
	}
	lib, err := delegate.Open(e.lib)
	if err != nil {
		t.Fatal(err)
	}
	d, err := delegate.LoadDelegate(e.dlg, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m, err := lib.LoadModel(face)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	it, err := lib.NewInterpreter(m, delegate.InterpreterOptions{Delegates: []*delegate.ExternalDelegate{d}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	img := synth.NewScene(7).Render(128)
	chw := capture.Normalize(img, 128, 128)
	hwc := make([]float32, len(chw))
	for c := 0; c < 3; c++ {
		for i := 0; i < 128*128; i++ {
			hwc[i*3+c] = chw[c*128*128+i]
		}
	}
	if err := it.Inputs()[0].SetReal(hwc); err != nil {
		t.Fatal(err)
	}
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	for _, o := range it.Outputs() {
		v, err := o.Real()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("output %s %v holds %v", o.Name(), o.Shape(), x)
			}
		}
		t.Logf("output %s %v ok", o.Name(), o.Shape())
	}
}

// TestNPUDelegateErrors: a bad option set or a missing library is an
// error, never a crash, on the device too.
func TestNPUDelegateErrors(t *testing.T) {
	e := npu(t)
	if _, err := delegate.LoadDelegate(filepath.Join(t.TempDir(), "absent.so"), nil); err == nil {
		t.Fatal("absent delegate loaded")
	}
	if _, err := delegate.Open(e.dlg); err == nil || !strings.Contains(err.Error(), "missing symbol") {
		t.Fatalf("opening the delegate as TFLite: %v", err)
	}
}

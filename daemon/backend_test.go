package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	"github.com/palid/palid/delegate"
	"github.com/palid/palid/internal/mosquittotest"
	"github.com/palid/palid/internal/tflitetest"
	"github.com/palid/palid/mqtt"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// TestAutoBackendUsesTFLite runs the daemon with backend auto: the vision
// tower exported to vision.tflite passes the self-check and runs in the
// real TFLite library, and the daemon answers through it.
func TestAutoBackendUsesTFLite(t *testing.T) {
	lib := tflitetest.Library(t)
	dir := t.TempDir()
	if err := palirt.WriteRandomModel(dir, "tiny", neon.F32, 9); err != nil {
		t.Fatal(err)
	}
	m, err := palirt.Load(dir, palirt.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n := m.ImageSize()
	var calib []palirt.Image
	for i := int64(0); i < 16; i++ {
		calib = append(calib, palirt.Image{Width: n, Height: n, Pix: capture.Normalize(synth.NewScene(100+i).Render(224), n, n)})
	}
	data, _, err := delegate.ExportVision(context.Background(), m.VisionTower(), delegate.ExportOptions{Calibration: calib})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, delegate.VisionFile), data, 0o644); err != nil {
		t.Fatal(err)
	}

	b := mosquittotest.Start(t)
	cfg := DefaultConfig()
	cfg.DeviceID, cfg.Broker.URL, cfg.StateDir = "cam", b.URL(), t.TempDir()
	cfg.Source, cfg.FPS, cfg.HTTP.Addr = "synthetic:4", 20, ""
	cfg.Question.Interval, cfg.Question.Enabled = 0, false
	cfg.Model, cfg.Backend, cfg.TFLite.Library = dir, "auto", lib
	d, err := New(cfg, Options{Logger: testLog(t), Model: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready")
	}
	if name := d.vision.Name(); !strings.HasPrefix(name, "tflite") {
		t.Fatalf("backend auto chose %q; want tflite", name)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	resp, err := mqtt.Query(qctx, b.URL(), "cam", mqtt.Request{Question: "caption en"})
	if err != nil || resp.Status != mqtt.StatusOK {
		t.Fatalf("%+v %v", resp, err)
	}
	if !strings.HasPrefix(d.Overview().Backend, "tflite") {
		t.Errorf("overview backend %q", d.Overview().Backend)
	}
}

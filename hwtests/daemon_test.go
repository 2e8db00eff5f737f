//go:build hwtest

package hwtests

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palid/palid/daemon"
	"github.com/palid/palid/mqtt"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// daemonModel is the model directory of the end-to-end test: PALID_MODEL,
// else the one the image installs, else a random tiny model written to a
// temporary directory (the answers are then not sensible, but every part
// runs). real reports whether it is a trained model.
func daemonModel(t *testing.T) (dir string, real bool) {
	if d := os.Getenv("PALID_MODEL"); d != "" {
		return d, true
	}
	const installed = "/usr/share/palid/models/default"
	if _, err := os.Stat(filepath.Join(installed, "model.gguf")); err == nil {
		return installed, true
	}
	dir = t.TempDir()
	if err := palirt.WriteRandomModel(dir, "tiny", neon.Q8_0, 11); err != nil {
		t.Fatal(err)
	}
	t.Logf("no model at $PALID_MODEL or %s: using a random tiny model", installed)
	return dir, false
}

// TestDaemonQuestion runs palid's daemon as the image does, on the real
// camera with the embedded broker, and asks it a frame question and a
// video question over MQTT, as Home Assistant or `palid query` would.
func TestDaemonQuestion(t *testing.T) {
	cam := cameraPath(t)
	dir, realModel := daemonModel(t)

	cfg := daemon.DefaultConfig()
	cfg.DeviceID = "hwtest"
	cfg.Model = dir
	cfg.Source = "v4l2:" + cam
	cfg.FPS = 5
	cfg.StateDir = t.TempDir()
	cfg.Broker.URL = ""
	cfg.Broker.Embedded = "127.0.0.1:0"
	cfg.Question.Enabled = false
	cfg.Question.Interval = 0
	cfg.HTTP.Addr = ""
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: "hwtest"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
		t.Logf("ready after %v, broker %s", time.Since(start), d.BrokerURL())
	case err := <-done:
		t.Fatalf("daemon ended before ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("daemon not ready after 3 minutes")
	}

	// Let the capture loop fill the ring for the video question.
	time.Sleep(4 * time.Second)
	for _, req := range []mqtt.Request{
		{Question: "caption en", Mode: mqtt.ModeFrame, TimeoutS: 120},
		{Question: "what is happening?", Mode: mqtt.ModeVideo, Frames: 4, Stride: 2, TimeoutS: 300},
	} {
		t.Run(string(req.Mode), func(t *testing.T) {
			qctx, qcancel := context.WithTimeout(ctx, time.Duration(req.TimeoutS+30)*time.Second)
			defer qcancel()
			asked := time.Now()
			resp, err := mqtt.Query(qctx, d.BrokerURL(), cfg.DeviceID, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != mqtt.StatusOK || resp.Data == nil {
				t.Fatalf("response %+v", resp)
			}
			a := resp.Data
			t.Logf("answer %q in %.0f ms (queue %.0f ms), %d frames captured at %v, model %s",
				a.Answer, a.LatencyMS, a.QueueMS, a.Frames, a.CapturedAt, a.Model)
			want := 1
			if req.Mode == mqtt.ModeVideo {
				want = req.Frames
			}
			if a.Frames != want || a.Mode != req.Mode {
				t.Errorf("mode %q with %d frames, want %q with %d", a.Mode, a.Frames, req.Mode, want)
			}
			if age := asked.Sub(a.CapturedAt); age > 30*time.Second || a.CapturedAt.After(time.Now()) {
				t.Errorf("frame captured at %v, asked at %v: not a live frame", a.CapturedAt, asked)
			}
			if a.LatencyMS <= 0 || a.Model == "" || a.Question == "" {
				t.Errorf("incomplete answer data %+v", a)
			}
			if realModel && a.Answer == "" {
				t.Error("a trained model gave an empty answer")
			}
		})
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop within 30 s")
	}
}

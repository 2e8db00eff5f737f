package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	"github.com/palid/palid/daemon"
	"github.com/palid/palid/internal/mosquittotest"
	"github.com/palid/palid/mqtt"
	palirt "github.com/palid/palid/runtime"
)

// e2eCases are held-out scenes and clips (never used in training) whose
// questions the bundled model answers right through `palid ask`; the
// expected answers are the synthetic world's truth, not the model's. The
// demo model is weaker on clips (docs/demo-model.md: 85% of held-out
// direction questions), so the clip cases show the video path end to end,
// not the model's skill; every raw answer's frame count (16 for a clip) is
// checked too.
var e2eCases = []struct {
	seed  int64
	clip  bool
	task  string // the question's task word, to pick it from the scene's questions
	plain bool   // also ask as a plain-text MQTT payload
}{
	{9000002, false, "color", true},
	{9000003, false, "exists", true},
	{9000004, false, "count", false},
	{8000001, true, "direction", false},
	{8000008, true, "enter", false},
}

// TestBundledModelOverMQTT is the whole product end to end: the bundled
// model in a daemon, frames from a camera source, a real mosquitto broker,
// questions through `palid query` (a child process) and as raw MQTT
// payloads, and answers checked against the synthetic world's truth.
func TestBundledModelOverMQTT(t *testing.T) {
	if _, err := os.Stat(filepath.Join(bundledModel, "model.gguf")); err != nil {
		t.Fatalf("bundled model missing: %v", err)
	}
	m, err := palirt.Load(bundledModel, palirt.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := mosquittotest.Start(t)
	for i, c := range e2eCases {
		// The frames, as image files a dir: camera source plays once.
		dir := t.TempDir()
		var qas []synth.QA
		if c.clip {
			cl := synth.NewClip(c.seed)
			for j, f := range cl.Frames(m.ImageSize()) {
				writeFramePNG(t, filepath.Join(dir, fmt.Sprintf("f%02d.png", j)), f)
			}
			qas = cl.Questions()
		} else {
			sc := synth.NewScene(c.seed)
			writeFramePNG(t, filepath.Join(dir, "f00.png"), sc.Render(m.ImageSize()))
			qas = sc.Questions()
		}
		var qa synth.QA
		for _, q := range qas {
			if q.Task() == c.task {
				qa = q
				break
			}
		}
		if qa.Prompt == "" {
			t.Fatalf("seed %d has no %s question", c.seed, c.task)
		}
		src, err := capture.OpenWith("dir:"+dir, capture.Options{Once: true, Unpaced: true, FPS: 16})
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("e2e%d", i)
		cfg := daemon.DefaultConfig()
		cfg.DeviceID, cfg.Broker.URL, cfg.StateDir, cfg.Source = id, b.URL(), t.TempDir(), "dir:"+dir
		cfg.HTTP.Addr, cfg.Question.Interval, cfg.Question.Enabled = "", 0, false
		d, err := daemon.New(cfg, daemon.Options{Model: m, Source: src, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		<-d.Ready()
		want := 1
		if c.clip {
			want = synth.ClipFrames
		}
		for d.FramesCaptured() < uint64(want) {
			time.Sleep(10 * time.Millisecond)
		}

		// palid query, as a person or a script runs it.
		args := []string{"query", "--broker", b.URL(), "--device", id}
		if c.clip {
			args = append(args, "--video")
		}
		out, err := palidCmd(nil, append(args, qa.Prompt)...).Output()
		if err != nil {
			t.Fatalf("palid query %q: %v", qa.Prompt, err)
		}
		if got := strings.TrimSpace(string(out)); got != qa.Answer {
			t.Errorf("seed %d %q via palid query: %q, want %q", c.seed, qa.Prompt, got, qa.Answer)
		}
		// Raw MQTT: JSON, and plain text for frame questions.
		payloads := []string{fmt.Sprintf(`{"question": %q, "mode": %q, "transaction": "raw-%d"}`, qa.Prompt, map[bool]string{false: "frame", true: "video"}[c.clip], i)}
		if c.plain {
			payloads = append(payloads, qa.Prompt)
		}
		for _, p := range payloads {
			// The answer, and that it looked at the whole clip: the demo
			// model's clip answers are near its priors, so the frame count
			// is what shows the video path ran.
			got := rawAsk(t, b.URL(), id, p)
			if got.Answer != qa.Answer {
				t.Errorf("seed %d payload %q: %q, want %q", c.seed, p, got.Answer, qa.Answer)
			}
			if got.Frames != want {
				t.Errorf("seed %d payload %q: answered from %d frames, want %d", c.seed, p, got.Frames, want)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func writeFramePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// rawAsk publishes payload on the request topic with a plain paho client
// and returns the answer of the next response.
func rawAsk(t *testing.T, url, id, payload string) *mqtt.Data {
	t.Helper()
	resp := make(chan mqtt.Response, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("raw-" + id).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	tok := c.Subscribe("palid/"+id+"/response/ask", 1, func(_ paho.Client, m paho.Message) {
		var r mqtt.Response
		if json.Unmarshal(m.Payload(), &r) == nil {
			select {
			case resp <- r:
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c.Publish("palid/"+id+"/request/ask", 1, false, payload).WaitTimeout(10 * time.Second)
	select {
	case r := <-resp:
		if r.Status != mqtt.StatusOK || r.Data == nil {
			t.Fatalf("payload %q: %+v", payload, r)
		}
		return r.Data
	case <-time.After(30 * time.Second):
		t.Fatalf("payload %q: no response", payload)
	}
	return nil
}

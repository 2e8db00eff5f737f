package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/palid/palid/internal/mosquittotest"
	"github.com/palid/palid/mqtt"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// tinyModel is a small random-weight model: the answers are not sensible,
// but every part of the pipeline runs for real.
func tinyModel(t testing.TB) *palirt.Model {
	t.Helper()
	tinyOnce.Do(func() {
		tinyDir, tinyErr = os.MkdirTemp("", "palid-daemon-model")
		if tinyErr == nil {
			tinyErr = palirt.WriteRandomModel(tinyDir, "tiny", neon.Q8_0, 5)
		}
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	m, err := palirt.Load(tinyDir, palirt.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startDaemon runs a daemon on the synthetic camera against brokerURL.
func startDaemon(t *testing.T, brokerURL string, mod func(*Config)) *Daemon {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DeviceID = "cam"
	cfg.Broker.URL = brokerURL
	cfg.Source = "synthetic:3"
	cfg.FPS = 30
	cfg.StateDir = t.TempDir()
	cfg.Question.Interval = 0
	cfg.Question.Enabled = false
	cfg.HTTP.Addr = ""
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg, Options{Logger: testLog(t), Model: tinyModel(t), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon ended before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("daemon not ready after 60s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return d
}

// subscriber collects messages of topics on the broker.
type subscriber struct {
	c  paho.Client
	ch chan paho.Message
}

func subscribe(t *testing.T, url string, topics ...string) *subscriber {
	t.Helper()
	s := &subscriber{ch: make(chan paho.Message, 4096)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("sub-%d", time.Now().UnixNano())).SetCleanSession(true)
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	for _, tp := range topics {
		if tok := s.c.Subscribe(tp, 1, func(_ paho.Client, m paho.Message) { s.ch <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

func (s *subscriber) publish(t *testing.T, topic string, retained bool, payload any) {
	t.Helper()
	if tok := s.c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// responses reads responses until n arrived or timeout, keyed by transaction.
func (s *subscriber) responses(t *testing.T, n int, timeout time.Duration) map[string][]mqtt.Response {
	t.Helper()
	got := map[string][]mqtt.Response{}
	count := 0
	deadline := time.After(timeout)
	for count < n {
		select {
		case m := <-s.ch:
			if m.Topic() != "palid/cam/response/ask" {
				continue
			}
			var r mqtt.Response
			if err := json.Unmarshal(m.Payload(), &r); err != nil {
				t.Fatalf("response %q: %v", m.Payload(), err)
			}
			got[r.Transaction] = append(got[r.Transaction], r)
			count++
		case <-deadline:
			t.Fatalf("%d of %d responses after %v", count, n, timeout)
		}
	}
	return got
}

func TestFrameAndVideoQuestionsOverMQTT(t *testing.T) {
	b := mosquittotest.Start(t)
	d := startDaemon(t, b.URL(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	resp, err := mqtt.Query(ctx, b.URL(), "cam", mqtt.Request{Question: "what color is the circle?", Transaction: "t-frame"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != mqtt.StatusOK || resp.Transaction != "t-frame" || resp.Data == nil {
		t.Fatalf("frame response %+v", resp)
	}
	if resp.Data.Frames != 1 || resp.Data.Mode != mqtt.ModeFrame || resp.Data.ID == "" || resp.Data.CapturedAt.IsZero() {
		t.Errorf("frame data %+v", resp.Data)
	}
	// Wait until the ring holds 16 frames, then ask about a window.
	for d.ring.Len() < 16 {
		time.Sleep(20 * time.Millisecond)
	}
	snaps := subscribe(t, b.URL(), "palid/cam/snapshot")
	resp, err = mqtt.Query(ctx, b.URL(), "cam", mqtt.Request{Question: "which way is the red circle moving?", Mode: mqtt.ModeVideo, Frames: 16, Stride: 1, Snapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != mqtt.StatusOK || resp.Data.Frames != 16 || resp.Data.Mode != mqtt.ModeVideo {
		t.Fatalf("video response %+v data %+v", resp, resp.Data)
	}
	// The snapshot of a window is a contact sheet of its 16 frames, 4 x 4.
	select {
	case m := <-snaps.ch:
		img, err := jpeg.Decode(bytes.NewReader(m.Payload()))
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		f, _ := d.ring.Latest()
		fw, fh := f.Image.Bounds().Dx(), f.Image.Bounds().Dy()
		cw := min(320, fw)
		if got, want := img.Bounds().Size(), image.Pt(4*cw, 4*(cw*fh/fw)); got != want {
			t.Errorf("contact sheet %v, want %v (4 x 4 cells)", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot published")
	}
	if h := d.History(); len(h) != 2 || h[1].Prompt != "answer en which way is the red circle moving?" {
		t.Errorf("history %+v", h)
	}
}

func TestBadRequestsAnsweredDaemonUnharmed(t *testing.T) {
	b := mosquittotest.Start(t)
	startDaemon(t, b.URL(), nil)
	s := subscribe(t, b.URL(), "palid/cam/response/ask")
	bad := []string{
		`{"question": "x", "transaction": "t1", "frames": 17, "mode": "video"}`,
		`{"question": 5, "transaction": "t2"}`,
		`{"question": "x", "transaction": "t3", "colour": "red"}`,
		`{"question": "x", "transaction": "t4", "mode": "audio"}`,
		`{"question": "", "transaction": "t5"}`,
		`{"question": "x", "transaction": "t6",`,
	}
	for _, p := range bad {
		s.publish(t, "palid/cam/request/ask", false, p)
	}
	s.publish(t, "palid/cam/request/ask", false, []byte{0xff, 0xfe, 0x00, 0x80})
	got := s.responses(t, len(bad)+1, 30*time.Second)
	for i := 1; i <= len(bad); i++ {
		tx := fmt.Sprintf("t%d", i)
		r := got[tx]
		if len(r) != 1 || r[0].Status != mqtt.StatusError || r[0].Error == "" {
			t.Errorf("%s: responses %+v", tx, r)
		}
	}
	// Still answering.
	s.publish(t, "palid/cam/request/ask", false, `{"question": "caption en", "transaction": "ok"}`)
	got = s.responses(t, 1, 30*time.Second)
	if r := got["ok"]; len(r) != 1 || r[0].Status != mqtt.StatusOK {
		t.Fatalf("after bad input: %+v", got)
	}
}

func TestBurstAgainstSmallQueue(t *testing.T) {
	b := mosquittotest.Start(t)
	startDaemon(t, b.URL(), func(c *Config) { c.Queue.Max = 8 })
	s := subscribe(t, b.URL(), "palid/cam/response/ask")
	const n = 1000
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		s.c.Publish("palid/cam/request/ask", 1, false, fmt.Sprintf(`{"question": "caption en", "transaction": "b%d", "max_tokens": 2}`, i))
	}
	got := s.responses(t, n, 180*time.Second)
	ok, busy := 0, 0
	for i := 0; i < n; i++ {
		r := got[fmt.Sprintf("b%d", i)]
		if len(r) != 1 {
			t.Fatalf("b%d: %d responses", i, len(r))
		}
		switch {
		case r[0].Status == mqtt.StatusOK:
			ok++
		case len(r[0].Error) >= 4 && r[0].Error[:4] == "busy":
			busy++
		default:
			t.Errorf("b%d: %+v", i, r[0])
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d answered, %d busy; heap %d -> %d KiB", ok, busy, before.HeapAlloc>>10, after.HeapAlloc>>10)
	if ok+busy != n || busy == 0 || ok < 8 {
		t.Errorf("ok %d busy %d of %d", ok, busy, n)
	}
	if after.HeapAlloc > before.HeapAlloc+64<<20 {
		t.Errorf("heap grew from %d to %d bytes", before.HeapAlloc, after.HeapAlloc)
	}
}

func TestTimeoutAnsweredNotRun(t *testing.T) {
	b := mosquittotest.Start(t)
	d := startDaemon(t, b.URL(), nil)
	s := subscribe(t, b.URL(), "palid/cam/response/ask")
	// Hold the worker so that the next query's deadline passes in the queue.
	hold := make(chan struct{})
	d.queue.Submit(&Job{Run: func(context.Context) { <-hold }})
	s.publish(t, "palid/cam/request/ask", false, `{"question": "caption en", "transaction": "late", "timeout_s": 0.2}`)
	time.Sleep(500 * time.Millisecond)
	close(hold)
	got := s.responses(t, 1, 30*time.Second)
	r := got["late"]
	if len(r) != 1 || r[0].Status != mqtt.StatusError || r[0].Error[:7] != "timeout" {
		t.Fatalf("late query: %+v", r)
	}
}

func TestFormatsAndAnswerValue(t *testing.T) {
	for _, tc := range []struct {
		text   string
		format mqtt.Format
		want   any
		err    bool
	}{
		{"yes", mqtt.FormatYesNo, true, false},
		{"No.", mqtt.FormatYesNo, false, false},
		{"yes, a blue one", mqtt.FormatYesNo, true, false},
		{"blue", mqtt.FormatYesNo, nil, true},
		{`{"n": 2}`, mqtt.FormatJSON, map[string]any{"n": 2.0}, false},
		{`two`, mqtt.FormatJSON, nil, true},
		{"blue", mqtt.FormatText, nil, false},
	} {
		v, err := answerValue(tc.text, tc.format)
		if (err != nil) != tc.err || fmt.Sprint(v) != fmt.Sprint(tc.want) {
			t.Errorf("answerValue(%q, %s) = %v, %v", tc.text, tc.format, v, err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

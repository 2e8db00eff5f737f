package daemon

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/delegate"
	"github.com/palid/palid/mqtt"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
	"github.com/palid/palid/systemd"
	"periph.io/x/conn/v3/gpio"
)

// Options are what New needs besides the configuration.
type Options struct {
	// Logger receives the daemon's structured logs (default slog.Default()).
	Logger *slog.Logger
	// Notifier talks to systemd (default: a notifier on NOTIFY_SOCKET).
	Notifier *systemd.Notifier
	// Version is the program version for the info topic.
	Version string
	// Model, when set, is used instead of loading cfg.Model (tests, and
	// reloads that keep the model).
	Model *palirt.Model
	// Source, when set, is used instead of opening cfg.Source (tests).
	Source capture.Source
}

// Daemon is palid serve: it captures frames, answers questions from every
// trigger through one worker, and publishes over MQTT.
type Daemon struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	notify *systemd.Notifier

	model     *palirt.Model
	ownModel  bool
	modelName string
	vision    delegate.VisionBackend // where the ViT runs: cpu or tflite
	tokens    *capture.TokenCache    // visual tokens encoded ahead; nil when off
	src       capture.Source
	ring      *capture.Ring
	queue     *Queue
	broker    *Broker
	mq        *mqtt.Client
	brokerURL string

	ids      atomic.Uint64
	frames   atomic.Uint64 // frames captured
	progress *systemd.Progress
	capProg  *systemd.Progress
	metrics  *Metrics
	recent   *RecentAnswers
	http     *HTTPServer
	httpAddr string

	mu        sync.Mutex
	state     string // warming, idle, busy, error
	camera    capture.State
	standing  mqtt.Standing
	lastLat   time.Duration
	lastErr   string
	answered  int
	history   []Answer
	frameJPEG []byte        // newest frame as JPEG, for /snapshot.jpg
	frameSeq  uint64        // the frame frameJPEG holds
	intervalC chan struct{} // wakes the interval trigger after a change
	led       gpio.PinOut   // busy LED, nil without one
	ready     chan struct{}
}

// New prepares a daemon; Run starts it.
func New(cfg Config, opts Options) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notifier == nil {
		opts.Notifier = systemd.NewNotifier()
	}
	d := &Daemon{
		cfg:       cfg,
		opts:      opts,
		log:       opts.Logger,
		notify:    opts.Notifier,
		ring:      capture.NewRing(cfg.Window.RingBytes),
		queue:     NewQueue(cfg.Queue.Max),
		state:     "warming",
		intervalC: make(chan struct{}, 1),
		ready:     make(chan struct{}),
		progress:  systemd.NewProgress(cfg.Queue.StuckAfter),
		capProg:   systemd.NewProgress(2 * time.Minute),
		metrics:   NewMetrics(),
		recent:    NewRecentAnswers(DefaultRecentAnswers),
		standing: mqtt.Standing{
			Question: cfg.Question.Text,
			Mode:     mqtt.Mode(cfg.Question.Mode),
			Interval: cfg.Question.Interval,
			Enabled:  cfg.Question.Enabled && cfg.Question.Interval > 0,
		},
	}
	return d, nil
}

// Ready is closed once the daemon is serving (after READY=1).
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// BrokerURL is the broker the daemon talks to (the embedded one's address
// when it runs one); valid after Ready.
func (d *Daemon) BrokerURL() string { return d.brokerURL }

// FramesCaptured is the number of frames taken from the source so far.
func (d *Daemon) FramesCaptured() uint64 { return d.frames.Load() }

// HTTPAddr is the HTTP API's address, "" when it is off; valid after Ready.
func (d *Daemon) HTTPAddr() string { return d.httpAddr }

// Model is the loaded model; valid after Ready.
func (d *Daemon) Model() *palirt.Model { return d.model }

func (d *Daemon) setStatus(s string) {
	d.notify.Status(s)
	d.log.Info(s)
}

// Run starts every part, notifies READY and serves until ctx ends, then
// shuts down cleanly (offline on MQTT, waiting queries answered). The
// caller sends STOPPING=1 when the process is going away (a reload also
// ends Run).
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.start(ctx); err != nil {
		d.closeParts()
		return err
	}
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	spawn(func() { d.captureLoop(ctx) })
	if d.tokens != nil {
		spawn(func() { d.tokens.Run(ctx) })
	}
	spawn(func() { d.queue.Work(ctx, d.onBusy) })
	spawn(func() { d.intervalLoop(ctx) })
	spawn(func() { d.statusLoop(ctx) })
	if d.cfg.GPIO.Trigger != "" {
		if err := d.startGPIO(ctx, spawn); err != nil {
			d.log.Warn("gpio trigger off", "err", err)
		}
	}
	spawn(func() {
		d.notify.RunWatchdog(ctx, systemd.WatchdogInterval(), d.healthy)
	})
	if ln, err := d.httpListener(); err != nil {
		d.log.Warn("http api off", "err", err)
	} else if ln != nil {
		d.httpAddr = ln.Addr().String()
		d.log.Info("http api", "addr", d.httpAddr)
		spawn(func() {
			if err := d.http.Serve(ctx, ln); err != nil {
				d.log.Error("http api", "err", err)
			}
		})
	}

	d.setState("idle")
	d.notify.Ready(d.statusLine())
	close(d.ready)
	d.log.Info("ready", "model", d.modelName, "source", d.cfg.Source, "broker", d.brokerURL, "topic", d.cfg.Topic())

	<-ctx.Done()
	d.log.Info("stopping")
	wg.Wait()
	d.closeParts()
	return nil
}

func (d *Daemon) start(ctx context.Context) error {
	d.setStatus("loading model")
	if d.opts.Model != nil {
		d.model = d.opts.Model
	} else {
		m, err := palirt.Load(d.cfg.Model, palirt.Options{Threads: d.cfg.Threads})
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		d.model, d.ownModel = m, true
	}
	d.modelName = modelName(d.cfg.Model, d.model)
	d.setStatus("choosing the vision backend")
	tfModel := d.cfg.TFLite.Model
	if tfModel == "" && d.cfg.Model != "" {
		tfModel = filepath.Join(d.cfg.Model, delegate.VisionFile)
	}
	vb, err := delegate.Select(ctx, delegate.Config{
		Backend: d.cfg.Backend, Library: d.cfg.TFLite.Library, Model: tfModel, Threads: d.cfg.TFLite.Threads,
		Delegate: d.cfg.TFLite.Delegate, DelegateOptions: d.cfg.TFLite.DelegateOptions, MinCosine: d.cfg.TFLite.MinCosine,
	}, d.model, d.log)
	if err != nil {
		return fmt.Errorf("vision backend: %w", err)
	}
	d.vision = vb
	if d.cfg.Window.TokenCache {
		d.tokens = capture.NewTokenCache(d.encodeFrame, capture.TokenCacheOptions{
			Interval: d.cfg.Window.CacheInterval, Budget: d.cfg.Window.CacheBytes, Logger: d.log,
		})
	}
	d.metrics.SetInfo(d.modelName, vb.Name())
	d.http = NewHTTPServer(HTTPOptions{Token: d.cfg.HTTP.Token, Version: d.opts.Version, Logger: d.log},
		HTTPDeps{Asker: d, Snapshot: d.Snapshot, Overview: d.Overview, Metrics: d.metrics})
	d.setStatus("warming up")
	if err := d.warmUp(ctx); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	d.setStatus("opening camera")
	if d.opts.Source != nil {
		d.src = d.opts.Source
	} else {
		src, err := capture.OpenWith(d.cfg.Source, capture.Options{FPS: d.cfg.FPS, Logger: d.log, WaitForDevice: true})
		if err != nil {
			return fmt.Errorf("source %s: %w", d.cfg.Source, err)
		}
		d.src = src
	}

	d.setStatus("connecting to MQTT")
	d.brokerURL = d.cfg.Broker.URL
	if d.brokerURL == "" {
		b, err := StartBroker(d.cfg.Broker.Embedded, d.log)
		if err != nil {
			return err
		}
		d.broker = b
		d.brokerURL = b.URL()
	}
	mc, err := mqtt.New(mqtt.Config{
		Broker: mqtt.Broker{
			URL: d.brokerURL, Username: d.cfg.Broker.Username, Password: d.cfg.Broker.Password,
			CAFile: d.cfg.Broker.CAFile, CertFile: d.cfg.Broker.CertFile, KeyFile: d.cfg.Broker.KeyFile,
			InsecureSkipVerify: d.cfg.Broker.InsecureSkipVerify,
		},
		DeviceID:         d.cfg.DeviceID,
		BaseTopic:        d.cfg.BaseTopic,
		ClientID:         d.cfg.Broker.ClientID,
		StateDir:         d.cfg.StateDir,
		DiscoveryPrefix:  d.cfg.HomeAssistant.Prefix,
		DisableDiscovery: !d.cfg.HomeAssistant.Enabled,
		DeviceName:       "palid " + d.cfg.DeviceID,
		Model:            d.modelName,
		Version:          d.opts.Version,
		Logger:           d.log,
	}, mqtt.Handlers{Enqueue: d.enqueueMQTT, Setting: d.onSetting})
	if err != nil {
		return err
	}
	d.mq = mc
	// "MQTT tried": wait a little for the first connection, then go on;
	// the client keeps retrying and the outbox keeps answers meanwhile.
	tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := mc.Start(tctx); err != nil {
		d.log.Warn("mqtt: broker not reached yet; retrying in the background", "broker", d.brokerURL, "err", err)
	}
	tcancel()
	mc.PublishInfo(mqtt.Info{
		Version: d.opts.Version, Model: d.modelName, Backend: d.backendName(),
		Camera: d.cfg.Source, WindowFrames: d.cfg.Window.Frames, MaxQueue: d.cfg.Queue.Max,
	})
	d.mu.Lock()
	st := d.standing
	d.mu.Unlock()
	mc.PublishStanding(st)
	return nil
}

func (d *Daemon) closeParts() {
	if d.mq != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.mq.Close(ctx)
		cancel()
	}
	if d.broker != nil {
		d.broker.Close()
	}
	if d.vision != nil {
		d.vision.Close()
	}
	if d.src != nil && d.opts.Source == nil {
		d.src.Close()
	}
	if d.ownModel && d.model != nil {
		d.model.Close()
	}
}

// backendName says where the model runs, for the info topic and the status page.
func (d *Daemon) backendName() string {
	return d.vision.Name() + " (" + strings.Join(neon.Kernels(), ", ") + ")"
}

func modelName(dir string, m *palirt.Model) string {
	inf := m.Info()
	name := "pali3"
	if dir != "" {
		parts := strings.Split(strings.TrimRight(dir, "/"), "/")
		name = parts[len(parts)-1]
	}
	return fmt.Sprintf("%s (%s, %dpx)", name, inf.TextType, inf.ImageSize)
}

// warmUp runs one short answer on a grey frame through the chosen vision
// backend, so the first real question does not pay for page faults, pool
// start-up or the backend's first run.
func (d *Daemon) warmUp(ctx context.Context) error {
	n := d.model.ImageSize()
	v, err := d.vision.EncodeImage(ctx, palirt.Image{Width: n, Height: n, Pix: make([]float32, 3*n*n)})
	if err != nil {
		return err
	}
	_, err = d.model.Generate(ctx, palirt.Request{Visual: [][]float32{v}, Prompt: "caption en", MaxTokens: 2})
	return err
}

func (d *Daemon) captureLoop(ctx context.Context) {
	for {
		f, err := d.src.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, capture.ErrClosed) {
				return
			}
			if errors.Is(err, io.EOF) { // a finite source (Once) has no more frames
				d.log.Info("capture: the source has no more frames", "source", d.cfg.Source, "frames", d.frames.Load())
				return
			}
			d.log.Warn("capture", "err", err)
			d.setCamera(capture.StateLost)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		d.ring.Add(f)
		if d.tokens != nil {
			d.tokens.Offer(f)
		}
		d.frames.Add(1)
		d.metrics.FrameCaptured()
		state := capture.StateOK
		if sr, ok := d.src.(capture.StateReporter); ok {
			state = sr.State()
		}
		d.setCamera(state)
	}
}

func (d *Daemon) setCamera(s capture.State) {
	d.mu.Lock()
	changed := d.camera != s
	d.camera = s
	d.mu.Unlock()
	if changed {
		d.log.Info("camera", "state", s.String())
		d.publishStatus()
	}
}

func (d *Daemon) setState(s string) {
	d.mu.Lock()
	d.state = s
	d.mu.Unlock()
	d.publishStatus()
}

func (d *Daemon) onBusy(busy bool) {
	d.showBusy(busy)
	if busy {
		d.setState("busy")
	} else {
		d.setState("idle")
	}
	d.notify.Status(d.statusLine())
}

// healthy is the watchdog's test: the worker finishes its jobs and the
// capture loop delivers frames.
func (d *Daemon) healthy() bool {
	w := d.progress.Healthy(d.queue.Progress(), d.queue.Busy())
	c := d.capProg.Healthy(d.frames.Load(), true)
	return w && c
}

func (d *Daemon) statusLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := fmt.Sprintf("%s; camera %s; %d answered", d.state, d.camera, d.answered)
	if d.answered > 0 {
		s += fmt.Sprintf(", last %d ms", d.lastLat.Milliseconds())
	}
	if d.lastErr != "" {
		s += "; last error: " + d.lastErr
	}
	return s
}

func (d *Daemon) publishStatus() {
	if d.mq == nil {
		return
	}
	d.mu.Lock()
	st := mqtt.Status{
		State: d.state, Camera: d.camera.String(), Queue: d.queue.Len(),
		LastLatencyMS: float64(d.lastLat.Microseconds()) / 1000, LastError: d.lastErr, TS: time.Now().UTC(),
	}
	d.mu.Unlock()
	d.metrics.SetQueueDepth(st.Queue)
	d.mq.PublishStatus(st)
}

func (d *Daemon) statusLoop(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.publishStatus()
		}
	}
}

// Ask queues q and waits for its answer (the Asker of the HTTP API).
func (d *Daemon) Ask(ctx context.Context, q Question) (Answer, error) {
	type result struct {
		a   Answer
		err error
	}
	ch := make(chan result, 1)
	err := d.submit(q, func(a Answer, err error) { ch <- result{a, err} })
	if err != nil {
		d.record(q, Answer{Question: q.Text, Source: q.Source}, err)
		return Answer{}, err
	}
	select {
	case r := <-ch:
		return r.a, r.err
	case <-ctx.Done():
		return Answer{}, ctx.Err()
	}
}

// submit queues q; reply is called exactly once with its outcome, unless
// submit itself fails (busy).
func (d *Daemon) submit(q Question, reply func(Answer, error)) error {
	now := time.Now()
	timeout := q.Timeout
	if timeout <= 0 {
		timeout = d.cfg.Queue.DefaultTimeout
	}
	deadline := now.Add(timeout)
	err := d.queue.Submit(&Job{
		Enqueued: now,
		Deadline: deadline,
		Run: func(ctx context.Context) {
			a, err := d.answer(ctx, q, now)
			if errors.Is(err, context.DeadlineExceeded) {
				err = ErrTimeout
			}
			d.record(q, a, err)
			reply(a, err)
		},
		Expired: func() {
			a := Answer{Question: q.Text, Source: q.Source}
			d.record(q, a, ErrTimeout)
			reply(a, ErrTimeout)
		},
	})
	if err == nil {
		d.publishStatus()
	}
	return err
}

// record counts an outcome in the metrics, the recent answers and the status.
func (d *Daemon) record(q Question, a Answer, err error) {
	if a.Source == "" {
		a.Source = q.Source
	}
	d.metrics.ObserveAnswer(a, err)
	d.recent.Add(q, a, err)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.lastErr = err.Error()
		return
	}
	d.answered++
	d.lastLat = a.Latency
	d.lastErr = ""
	d.history = append(d.history, a)
	if len(d.history) > 20 {
		d.history = d.history[len(d.history)-20:]
	}
}

// History returns the recent answers, oldest first.
func (d *Daemon) History() []Answer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Answer(nil), d.history...)
}

// answer runs one question on the worker.
func (d *Daemon) answer(ctx context.Context, q Question, arrived time.Time) (Answer, error) {
	started := time.Now()
	a := Answer{
		ID:       fmt.Sprintf("q-%d", d.ids.Add(1)),
		Question: q.Text,
		Mode:     q.Mode,
		Source:   q.Source,
		Model:    d.modelName,
	}
	if a.Mode == "" {
		a.Mode = "frame"
	}
	lang := q.Lang
	if lang == "" {
		lang = d.cfg.Question.Lang
	}
	a.Prompt = palirt.BuildPrompt(q.Text, lang)
	if a.Prompt == "" {
		return a, errors.New("the question is empty")
	}

	var imgs []image.Image
	var camera []capture.Frame // the camera frames used, for the token cache
	switch {
	case len(q.Images) > 0:
		if len(q.Images) > palirt.MaxFrames {
			return a, fmt.Errorf("%d images: at most %d", len(q.Images), palirt.MaxFrames)
		}
		imgs = q.Images
		a.CapturedAt = started
	case a.Mode == "video":
		n, s := q.Frames, q.Stride
		if n <= 0 {
			n = d.cfg.Window.Frames
		}
		if s <= 0 {
			s = d.cfg.Window.Stride
		}
		w, err := d.windowWait(ctx, n, capture.Stride{Frames: s})
		if err != nil {
			return a, err
		}
		camera = w.Frames
		for _, f := range w.Frames {
			imgs = append(imgs, f.Image)
		}
		a.CapturedAt = w.Frames[len(w.Frames)-1].Time
	default:
		w, err := d.windowWait(ctx, 1, capture.Stride{Frames: 1})
		if err != nil {
			return a, err
		}
		imgs = []image.Image{w.Frames[0].Image}
		camera = w.Frames
		a.CapturedAt = w.Frames[0].Time
	}
	a.Frames = len(imgs)

	var visual [][]float32
	if d.tokens != nil && camera != nil {
		v, err := d.tokens.Tokens(ctx, camera)
		if err != nil {
			return a, fmt.Errorf("vision (%s): %w", d.vision.Name(), err)
		}
		visual = v
	} else {
		visual = make([][]float32, len(imgs))
		for i, img := range imgs {
			v, err := d.encodeFrame(ctx, capture.Frame{Image: img})
			if err != nil {
				return a, fmt.Errorf("vision (%s): %w", d.vision.Name(), err)
			}
			visual[i] = v
		}
	}
	maxTok := q.MaxTokens
	if maxTok <= 0 {
		maxTok = d.cfg.Queue.MaxTokens
	}
	res, err := d.model.Generate(ctx, palirt.Request{Visual: visual, Prompt: a.Prompt, MaxTokens: maxTok, OnToken: q.OnToken})
	if err != nil {
		return a, err
	}
	a.Text = res.Text
	a.Tokens = len(res.Tokens)
	done := time.Now()
	a.Latency = done.Sub(arrived)
	a.QueueTime = started.Sub(arrived)
	if q.Snapshot {
		a.Snapshot = ContactSheet(imgs)
	}
	d.log.Info("answered", "query_id", a.ID, "source", a.Source, "question", a.Question,
		"answer", a.Text, "frames", a.Frames, "latency_ms", a.Latency.Milliseconds(), "queue_ms", a.QueueTime.Milliseconds())
	return a, nil
}

// encodeFrame runs a frame through the vision tower (the token cache's
// encoder, and the path of frames not cached).
func (d *Daemon) encodeFrame(ctx context.Context, f capture.Frame) ([]float32, error) {
	size := d.model.ImageSize()
	return d.vision.EncodeImage(ctx, palirt.Image{Width: size, Height: size, Pix: capture.Normalize(f.Image, size, size)})
}

// windowWait samples the ring, waiting for the first frame if there is none yet.
func (d *Daemon) windowWait(ctx context.Context, n int, s capture.Stride) (capture.Window, error) {
	for {
		w, err := d.ring.Window(n, s)
		if err == nil {
			return w, nil
		}
		if !errors.Is(err, capture.ErrEmpty) {
			return w, err
		}
		if _, err := d.ring.WaitNewer(ctx, 0); err != nil {
			return w, fmt.Errorf("no frame from the camera: %w", err)
		}
	}
}

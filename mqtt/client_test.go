package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// fakeDaemon stands in for the daemon: a bounded queue and one worker that
// answers every request with an echo after `work`.
type fakeDaemon struct {
	c        *Client
	q        chan Request
	work     time.Duration
	enqueued atomic.Int64
	mu       sync.Mutex
	settings []Setting
	wg       sync.WaitGroup
	stop     chan struct{}
	next     atomic.Int64
}

func newFakeDaemon(t *testing.T, brokerURL, stateDir string, queue int, work time.Duration, mod func(*Config)) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{q: make(chan Request, queue), work: work, stop: make(chan struct{})}
	cfg := Config{
		Broker:               Broker{URL: brokerURL},
		DeviceID:             "cam1",
		StateDir:             stateDir,
		Version:              "0.1.0-test",
		Model:                "demo",
		MaxReconnectInterval: time.Second,
		ReconnectJitter:      200 * time.Millisecond,
		Logger:               testLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, Handlers{
		Enqueue: func(r Request) bool {
			select {
			case d.q <- r:
				d.enqueued.Add(1)
				return true
			default:
				return false
			}
		},
		Setting: func(s Setting) {
			d.mu.Lock()
			d.settings = append(d.settings, s)
			d.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.c = c
	d.wg.Add(1)
	go d.worker()
	t.Cleanup(d.close)
	return d
}

func (d *fakeDaemon) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func (d *fakeDaemon) close() {
	select {
	case <-d.stop:
		return
	default:
	}
	close(d.stop)
	d.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d.c.Close(ctx)
}

func (d *fakeDaemon) worker() {
	defer d.wg.Done()
	for {
		select {
		case <-d.stop:
			return
		case r := <-d.q:
			time.Sleep(d.work)
			data := &Data{
				ID:         fmt.Sprintf("q%d", d.next.Add(1)),
				Question:   r.Question,
				Answer:     "echo: " + r.Question,
				Mode:       r.Mode,
				Frames:     max(r.Frames, 1),
				CapturedAt: r.Received,
				Model:      "demo",
				LatencyMS:  float64(d.work.Milliseconds()),
				QueueMS:    float64(time.Since(r.Received).Milliseconds()),
			}
			if r.Format == FormatYesNo {
				data.Value = strings.Contains(r.Question, "yes")
			}
			d.c.Respond(Response{Status: StatusOK, Transaction: r.Transaction, Data: data})
			d.c.PublishAnswer(AnswerEvent{EventType: EventAnswer, Source: "mqtt", Transaction: r.Transaction, Data: data})
		}
	}
}

// recorder is a plain paho client of the test, recording what it receives.
type recorder struct {
	pc paho.Client
	ch chan recMsg
}

type recMsg struct {
	topic    string
	payload  []byte
	retained bool
	dup      bool
}

func newRecorder(t *testing.T, url, clientID string, clean bool, topics ...string) *recorder {
	t.Helper()
	r := &recorder{ch: make(chan recMsg, 100000)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(clean).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(time.Second).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			r.ch <- recMsg{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained(), m.Duplicate()}
		})
	subs := map[string]byte{}
	for _, tp := range topics {
		subs[tp] = 1
	}
	subscribed := make(chan error, 1)
	opts.SetOnConnectHandler(func(c paho.Client) {
		var err error
		if len(subs) > 0 {
			tok := c.SubscribeMultiple(subs, nil)
			tok.Wait()
			err = tok.Error()
		}
		select {
		case subscribed <- err:
		default:
		}
	})
	r.pc = paho.NewClient(opts)
	if tok := r.pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("recorder connect: %v", tok.Error())
	}
	select { // make sure the subscription is in place before the test goes on
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("recorder subscribe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("recorder subscribe timed out")
	}
	t.Cleanup(func() { r.pc.Disconnect(50) })
	return r
}

func (r *recorder) publish(t *testing.T, topic string, retained bool, payload []byte) {
	t.Helper()
	if tok := r.pc.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// next waits for the next message matching keep.
func (r *recorder) next(t *testing.T, timeout time.Duration, keep func(recMsg) bool) recMsg {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-r.ch:
			if keep(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no expected message within %v", timeout)
		}
	}
}

func onTopic(topic string) func(recMsg) bool { return func(m recMsg) bool { return m.topic == topic } }

func responseFor(tx string) func(recMsg) bool {
	return func(m recMsg) bool {
		if m.topic != "palid/cam1/response/ask" {
			return false
		}
		var r Response
		return json.Unmarshal(m.payload, &r) == nil && r.Transaction == tx
	}
}

func decodeResponse(t *testing.T, m recMsg) Response {
	t.Helper()
	var r Response
	if err := json.Unmarshal(m.payload, &r); err != nil {
		t.Fatalf("response %q: %v", m.payload, err)
	}
	return r
}

func TestQueryRoundTrip(t *testing.T) {
	b := startMosquitto(t)
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 8, 5*time.Millisecond, nil)
	d.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	resp, err := Query(ctx, b.URL(), "cam1", Request{Question: "is the door open? yes", Format: FormatYesNo, Transaction: "tx-42"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != StatusOK || resp.Transaction != "tx-42" || resp.Data == nil ||
		resp.Data.Answer != "echo: is the door open? yes" || resp.Data.Value != true || resp.Data.Mode != ModeFrame || resp.Error != "" {
		t.Fatalf("response %+v data %+v", resp, resp.Data)
	}
	// A fresh transaction is made when the caller gives none.
	resp, err = Query(ctx, b.URL(), "cam1", Request{Question: "which way did the car go?", Mode: ModeVideo, Frames: 16})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != StatusOK || len(resp.Transaction) != 16 || resp.Data.Frames != 16 || resp.Data.Mode != ModeVideo {
		t.Fatalf("response %+v data %+v", resp, resp.Data)
	}
	// Plain text over raw MQTT, answer event and answer state.
	rec := newRecorder(t, b.URL(), "rec-plain", true, "palid/cam1/#")
	rec.publish(t, "palid/cam1/request/ask", false, []byte("what color is the car?"))
	// The event goes through the outbox, the retained state directly: either may come first.
	var ev, st recMsg
	for ev.topic == "" || st.topic == "" {
		m := rec.next(t, 10*time.Second, func(m recMsg) bool { return strings.Contains(string(m.payload), "color") })
		switch m.topic {
		case "palid/cam1/answer":
			ev = m
		case "palid/cam1/answer/state":
			st = m
		}
	}
	var got map[string]any
	json.Unmarshal(ev.payload, &got)
	if got["event_type"] != "answer" || got["source"] != "mqtt" || got["answer"] != "echo: what color is the car?" || got["question"] != "what color is the car?" {
		t.Errorf("answer event %s", ev.payload)
	}
	var state AnswerState
	json.Unmarshal(st.payload, &state)
	if state.State != "echo: what color is the car?" || state.Attributes.Data == nil || state.Attributes.Answer != state.State {
		t.Errorf("answer state %s", st.payload)
	}
	if n := d.c.OutboxLen(); n != 0 {
		// acks may trail the deliveries by a moment
		time.Sleep(200 * time.Millisecond)
		if n = d.c.OutboxLen(); n != 0 {
			t.Errorf("outbox holds %d messages after all were delivered", n)
		}
	}
}

func TestLongAnswerState(t *testing.T) {
	b := startMosquitto(t)
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 8, 0, nil)
	d.start(t)
	rec := newRecorder(t, b.URL(), "rec-state", true, "palid/cam1/answer/state")
	long := strings.Repeat("a long answer ", 100)
	d.c.PublishAnswer(AnswerEvent{EventType: EventAnswer, Source: "interval", Data: &Data{ID: "x", Answer: long}})
	m := rec.next(t, 10*time.Second, func(m recMsg) bool { return strings.Contains(string(m.payload), "long answer") })
	var st AnswerState
	if err := json.Unmarshal(m.payload, &st); err != nil {
		t.Fatal(err)
	}
	if utf8.RuneCountInString(st.State) != 255 || st.Attributes.Answer != long || st.Attributes.Source != "interval" {
		t.Errorf("state %d characters, attributes answer %d characters", utf8.RuneCountInString(st.State), len(st.Attributes.Answer))
	}
	// It is retained: a newcomer gets it.
	rec2 := newRecorder(t, b.URL(), "rec-state2", true, "palid/cam1/answer/state")
	m2 := rec2.next(t, 10*time.Second, onTopic("palid/cam1/answer/state"))
	if !m2.retained || string(m2.payload) != string(m.payload) {
		t.Errorf("newcomer got retained=%v %.80s", m2.retained, m2.payload)
	}
}

func TestBusyWhenQueueFull(t *testing.T) {
	b := startMosquitto(t)
	// One slot, a slow worker: a burst overflows the queue.
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 1, 300*time.Millisecond, nil)
	d.start(t)
	rec := newRecorder(t, b.URL(), "rec-busy", true, "palid/cam1/response/ask")
	const n = 10
	for i := range n {
		rec.publish(t, "palid/cam1/request/ask", false, fmt.Appendf(nil, `{"question": "q%d", "transaction": "b%d"}`, i, i))
	}
	busy, ok := 0, 0
	seen := map[string]bool{}
	for range n {
		r := decodeResponse(t, rec.next(t, 20*time.Second, onTopic("palid/cam1/response/ask")))
		if seen[r.Transaction] {
			t.Errorf("second response for %s", r.Transaction)
		}
		seen[r.Transaction] = true
		switch {
		case r.Status == StatusOK:
			ok++
		case r.Status == StatusError && strings.HasPrefix(r.Error, "busy:"):
			busy++
		default:
			t.Errorf("response %+v", r)
		}
	}
	if busy == 0 || ok == 0 || busy+ok != n || int64(ok) != d.enqueued.Load() {
		t.Errorf("%d ok, %d busy, %d enqueued; want both kinds, %d in all", ok, busy, d.enqueued.Load(), n)
	}
}

func TestBadInputAnsweredAndDaemonUnharmed(t *testing.T) {
	b := startMosquitto(t)
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 8, 0, nil)
	d.start(t)
	rec := newRecorder(t, b.URL(), "rec-bad", true, "palid/cam1/response/ask")
	cases := []struct{ payload, tx, reason string }{
		{`{"question": "x", "transaction": "e1"`, "e1", "invalid JSON"},
		{`{"question": 7, "transaction": "e2"}`, "e2", "question: want a string"},
		{`{"question": "x", "frames": "many", "transaction": "e3"}`, "e3", "frames: want an integer"},
		{`{"question": "x", "zoom": 2, "transaction": "e4"}`, "e4", "zoom: unknown field"},
		{`{"question": "x", "mode": "movie", "transaction": "e5"}`, "e5", "mode: unknown mode"},
		{`{"question": "x", "mode": "video", "frames": 17, "transaction": "e6"}`, "e6", "frames: 17 is above the limit of 16"},
		{`{"question": "", "transaction": "e7"}`, "e7", "question: empty"},
		{`{"question": "` + strings.Repeat("z", 10<<20) + `", "transaction": "e8"}`, "e8", "above the limit"},
		{"\x00\xff\xfe binary \x80\x81", "", "not UTF-8"},
	}
	for _, c := range cases {
		rec.publish(t, "palid/cam1/request/ask", false, []byte(c.payload))
		r := decodeResponse(t, rec.next(t, 20*time.Second, onTopic("palid/cam1/response/ask")))
		if r.Status != StatusError || r.Transaction != c.tx || !strings.HasPrefix(r.Error, ErrWordInvalid+": ") || !strings.Contains(r.Error, c.reason) || r.Data != nil {
			t.Errorf("payload %.50q: response %+v, want error with %q and transaction %q", c.payload, r, c.reason, c.tx)
		}
	}
	if d.enqueued.Load() != 0 {
		t.Errorf("%d bad requests reached the queue", d.enqueued.Load())
	}
	// Still answering.
	rec.publish(t, "palid/cam1/request/ask", false, []byte(`{"question": "still there?", "transaction": "ok1"}`))
	r := decodeResponse(t, rec.next(t, 20*time.Second, onTopic("palid/cam1/response/ask")))
	if r.Status != StatusOK || r.Transaction != "ok1" {
		t.Errorf("after bad input: %+v", r)
	}
}

func TestRetainedRequestIgnored(t *testing.T) {
	b := startMosquitto(t)
	rec := newRecorder(t, b.URL(), "rec-ret", true, "palid/cam1/response/ask")
	rec.publish(t, "palid/cam1/request/ask", true, []byte(`{"question": "stale", "transaction": "retained"}`))
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 8, 0, nil)
	d.start(t)
	// The retained request reaches the client as soon as it subscribes;
	// a fresh one sent afterwards is answered, and it must be the only one.
	time.Sleep(200 * time.Millisecond)
	rec.publish(t, "palid/cam1/request/ask", false, []byte(`{"question": "fresh", "transaction": "fresh"}`))
	r := decodeResponse(t, rec.next(t, 20*time.Second, onTopic("palid/cam1/response/ask")))
	if r.Transaction != "fresh" || r.Status != StatusOK {
		t.Fatalf("first response %+v, want the fresh request's", r)
	}
	if n := d.enqueued.Load(); n != 1 {
		t.Errorf("%d requests enqueued, want 1 (the retained one ignored)", n)
	}
}

func TestAvailabilityAndWill(t *testing.T) {
	b := startMosquitto(t)
	p := newProxy(t, strings.TrimPrefix(b.URL(), "tcp://"))
	d := newFakeDaemon(t, p.url(), t.TempDir(), 8, 0, func(c *Config) { c.KeepAlive = 2 * time.Second })
	d.start(t)
	rec := newRecorder(t, b.URL(), "rec-avail", true, "palid/cam1/available")
	m := rec.next(t, 10*time.Second, onTopic("palid/cam1/available"))
	if string(m.payload) != "online" {
		t.Fatalf("available = %q, want online", m.payload)
	}
	// The device vanishes without a DISCONNECT: the broker publishes the will.
	p.cut()
	m = rec.next(t, 20*time.Second, onTopic("palid/cam1/available"))
	if string(m.payload) != "offline" {
		t.Fatalf("after the connection was cut: available = %q, want offline", m.payload)
	}
	// It is retained for newcomers.
	rec2 := newRecorder(t, b.URL(), "rec-avail2", true, "palid/cam1/available")
	m = rec2.next(t, 10*time.Second, onTopic("palid/cam1/available"))
	if string(m.payload) != "offline" || !m.retained {
		t.Errorf("newcomer: %q retained=%v", m.payload, m.retained)
	}
}

func TestOnlineLastAndOfflineOnClose(t *testing.T) {
	b := startMosquitto(t)
	rec := newRecorder(t, b.URL(), "rec-order", true, "palid/cam1/#")
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 8, 0, nil)
	d.c.PublishInfo(Info{Version: "0.1.0-test", Model: "demo", Backend: "neon", Camera: "synthetic:1", WindowFrames: 16, MaxQueue: 8})
	d.c.PublishStatus(Status{State: "idle", Camera: "ok", TS: time.Now()})
	d.c.PublishStanding(Standing{Question: "is anyone there?", Mode: ModeFrame, Interval: 30 * time.Second, Enabled: true})
	d.c.Respond(Response{Status: StatusOK, Transaction: "early", Data: &Data{ID: "e"}})
	d.start(t)
	var topics []string
	for {
		m := rec.next(t, 10*time.Second, func(recMsg) bool { return true })
		topics = append(topics, m.topic)
		if m.topic == "palid/cam1/available" {
			if string(m.payload) != "online" {
				t.Fatalf("available %q", m.payload)
			}
			break
		}
	}
	want := []string{"palid/cam1/response/ask", "palid/cam1/info", "palid/cam1/status", "palid/cam1/question/state",
		"palid/cam1/mode/state", "palid/cam1/interval/state", "palid/cam1/enabled/state", "palid/cam1/available"}
	if strings.Join(topics, " ") != strings.Join(want, " ") {
		t.Errorf("on connect got\n%v\nwant\n%v", topics, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m := rec.next(t, 10*time.Second, onTopic("palid/cam1/available"))
	if string(m.payload) != "offline" {
		t.Errorf("after Close: available %q", m.payload)
	}
}

func TestStandingQuestionTopics(t *testing.T) {
	b := startMosquitto(t)
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 8, 0, nil)
	d.start(t)
	rec := newRecorder(t, b.URL(), "rec-standing", true, "palid/cam1/+/state")
	rec.publish(t, "palid/cam1/interval/set", false, []byte("45"))
	rec.publish(t, "palid/cam1/interval/set", false, []byte("soon")) // invalid: ignored
	rec.publish(t, "palid/cam1/mode/set", false, []byte("video"))
	rec.publish(t, "palid/cam1/enabled/set", false, []byte("OFF"))
	rec.publish(t, "palid/cam1/question/set", false, []byte("is the gate open?"))
	rec.publish(t, "palid/cam1/question/ask", false, []byte("PRESS"))
	want := []Setting{
		{Kind: SettingInterval, Interval: 45 * time.Second},
		{Kind: SettingMode, Mode: ModeVideo},
		{Kind: SettingEnabled, Enabled: false},
		{Kind: SettingQuestion, Question: "is the gate open?"},
		{Kind: SettingAsk},
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.mu.Lock()
		n := len(d.settings)
		got := append([]Setting(nil), d.settings...)
		d.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			// delivery order is not guaranteed (ordered delivery is off): compare as sets
			for _, w := range want {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Errorf("setting %+v not delivered; got %+v", w, got)
				}
			}
			if len(got) != len(want) {
				t.Errorf("got %d settings, want %d: %+v", len(got), len(want), got)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.c.PublishStanding(Standing{Question: "is the gate open?", Mode: ModeVideo, Interval: 45 * time.Second, Enabled: false})
	states := map[string]string{}
	for len(states) < 4 {
		m := rec.next(t, 10*time.Second, func(recMsg) bool { return true })
		states[m.topic] = string(m.payload)
	}
	if states["palid/cam1/question/state"] != "is the gate open?" || states["palid/cam1/mode/state"] != "video" ||
		states["palid/cam1/interval/state"] != "45" || states["palid/cam1/enabled/state"] != "OFF" {
		t.Errorf("states %v", states)
	}
}

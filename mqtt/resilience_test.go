package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestOutboxFile(t *testing.T) {
	dir := t.TempDir()
	o, warn, err := openOutbox(dir, 5)
	if err != nil || len(warn) != 0 {
		t.Fatal(err, warn)
	}
	for i := range 4 {
		if _, _, err := o.append("a/b", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	o.remove(2)
	// A torn or foreign file is moved aside, a leftover temp file removed.
	os.WriteFile(filepath.Join(dir, "00000000000000000099.msg"), []byte("PALIDOB1garbage"), 0o600)
	os.WriteFile(filepath.Join(dir, ".00000000000000000100.tmp"), []byte("x"), 0o600)
	o2, warn, err := openOutbox(dir, 5)
	if err != nil || len(warn) != 1 {
		t.Fatalf("reopen: %v, warnings %v", err, warn)
	}
	var got []string
	for _, e := range o2.list() {
		got = append(got, fmt.Sprintf("%d:%s:%s", e.ID, e.Topic, e.Payload))
	}
	if fmt.Sprint(got) != "[1:a/b:m0 3:a/b:m2 4:a/b:m3]" {
		t.Errorf("reopened outbox %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000099.msg.bad")); err != nil {
		t.Error("bad entry not moved aside")
	}
	if _, err := os.Stat(filepath.Join(dir, ".00000000000000000100.tmp")); err == nil {
		t.Error("temp file left")
	}
	// Ids continue after the highest, and the bound drops the oldest.
	id, _, _ := o2.append("a/b", []byte("m4"))
	if id != 5 {
		t.Errorf("next id %d, want 5", id)
	}
	o2.append("a/b", []byte("m5"))
	_, dropped, _ := o2.append("a/b", []byte("m6"))
	if len(dropped) != 1 || string(dropped[0].Payload) != "m0" || o2.len() != 5 {
		t.Errorf("dropped %v, len %d", dropped, o2.len())
	}
}

// TestOutboxReplayOrder: answers made while no broker could be reached are
// kept on disk across a restart of the program and delivered in order.
func TestOutboxReplayOrder(t *testing.T) {
	b := startMosquitto(t)
	rec := newRecorder(t, b.URL(), "rec-replay", true, "palid/cam1/response/ask", "palid/cam1/answer")
	state := t.TempDir()

	// First run: the broker address is wrong (nothing listens there).
	d1 := newFakeDaemon(t, "tcp://127.0.0.1:1", state, 8, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := d1.c.Start(ctx); err == nil {
		t.Fatal("connected to nothing")
	}
	cancel()
	const n = 30
	for i := range n {
		d1.c.Respond(Response{Status: StatusOK, Transaction: fmt.Sprintf("r%02d", i), Data: &Data{ID: fmt.Sprint(i)}})
		if i%10 == 0 {
			d1.c.PublishAnswer(AnswerEvent{EventType: EventAnswer, Source: "interval", Data: &Data{ID: fmt.Sprint(i)}})
		}
	}
	if d1.c.OutboxLen() != n+3 {
		t.Fatalf("outbox holds %d, want %d", d1.c.OutboxLen(), n+3)
	}
	d1.close()

	// Second run, same state directory, the real broker.
	d2 := newFakeDaemon(t, b.URL(), state, 8, 0, nil)
	d2.start(t)
	var order []string
	for len(order) < n+3 {
		m := rec.next(t, 20*time.Second, func(recMsg) bool { return true })
		if m.topic == "palid/cam1/answer" {
			var ev AnswerEvent
			json.Unmarshal(m.payload, &ev)
			order = append(order, "a"+ev.ID)
			continue
		}
		order = append(order, decodeResponse(t, m).Transaction)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("r%02d", i))
		if i%10 == 0 {
			want = append(want, fmt.Sprintf("a%d", i))
		}
	}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("replayed\n%v\nwant\n%v", order, want)
	}
	waitEmpty(t, d2.c)
	select {
	case m := <-rec.ch:
		t.Errorf("unexpected extra message %s %s", m.topic, m.payload)
	case <-time.After(300 * time.Millisecond):
	}
}

func waitEmpty(t *testing.T, c *Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.OutboxLen() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d messages", c.OutboxLen())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBrokerRestartMidBurst: the broker is stopped and started again in
// the middle of a burst of 50 requests; every request gets exactly one
// response once it is back: one publication by the daemon, received once
// as a new message. (The broker itself may send a message again with the
// DUP flag when it stopped before seeing the subscriber's PUBACK; that is
// QoS 1's at-least-once, checked to be a copy of an earlier delivery.)
func TestBrokerRestartMidBurst(t *testing.T) {
	b := startMosquitto(t)
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 64, 10*time.Millisecond, nil)
	d.start(t)

	// The requester keeps a persistent session so that responses published
	// while it is away are queued for it by the broker.
	var mu sync.Mutex
	counts := map[string]int{}
	ids := map[string]bool{}
	first := map[string]string{}
	redelivered := 0
	opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("burst-requester").SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			var r Response
			if err := json.Unmarshal(m.Payload(), &r); err != nil {
				t.Errorf("response %q: %v", m.Payload(), err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if m.Duplicate() || (first[r.Transaction] != "" && first[r.Transaction] == string(m.Payload())) {
				// QoS 1 is at least once: the broker re-sends (DUP set) what
				// it had sent when it stopped but had not seen
				// acknowledged, and it forwards as a new message the
				// daemon's own re-sent publication that it had received
				// but not acknowledged before stopping. Either is a copy,
				// byte for byte, of a delivery already made (the same
				// answer id), not a second answer by the daemon.
				if first[r.Transaction] != string(m.Payload()) {
					t.Errorf("re-delivery of %s that is not a copy of an earlier one: %s", r.Transaction, m.Payload())
				}
				redelivered++
				return
			}
			if first[r.Transaction] == "" {
				first[r.Transaction] = string(m.Payload())
			}
			counts[r.Transaction]++
			if r.Data != nil {
				ids[r.Data.ID] = true
			}
		})
	pc := paho.NewClient(opts)
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pc.Disconnect(50)
	if tok := pc.Subscribe("palid/cam1/response/ask", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	const n = 50
	for i := range n {
		if i == 20 {
			b.Stop()
			go func() { time.Sleep(700 * time.Millisecond); b.Restart() }()
		}
		pc.Publish("palid/cam1/request/ask", 1, false, fmt.Appendf(nil, `{"question": "q%d", "transaction": "burst-%02d"}`, i, i))
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		got := len(counts)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%d of %d requests answered after the broker returned: %v", got, n, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // room for duplicates to show up
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		tx := fmt.Sprintf("burst-%02d", i)
		if counts[tx] != 1 {
			t.Errorf("%s answered %d times", tx, counts[tx])
		}
	}
	t.Logf("%d copies re-delivered by QoS 1 (byte-identical to the first delivery)", redelivered)
	if len(ids) != n || d.enqueued.Load() != n {
		t.Errorf("%d distinct answer ids, %d requests run; want %d", len(ids), d.enqueued.Load(), n)
	}
	waitEmpty(t, d.c)
}

func TestHomeAssistantDiscovery(t *testing.T) {
	b := startMosquitto(t)
	rec := newRecorder(t, b.URL(), "rec-ha", true, "homeassistant/device/cam1/config")
	d := newFakeDaemon(t, b.URL(), t.TempDir(), 8, 0, nil)
	d.start(t)
	m := rec.next(t, 10*time.Second, onTopic("homeassistant/device/cam1/config"))
	checkDiscovery(t, m.payload)

	// Re-sent when Home Assistant announces itself.
	ha := newRecorder(t, b.URL(), "ha-birth", true)
	ha.publish(t, "homeassistant/status", false, []byte("offline"))
	ha.publish(t, "homeassistant/status", false, []byte("online"))
	m = rec.next(t, 10*time.Second, onTopic("homeassistant/device/cam1/config"))
	checkDiscovery(t, m.payload)
	select {
	case m := <-rec.ch:
		t.Errorf("discovery sent again without reason (retained=%v)", m.retained)
	case <-time.After(300 * time.Millisecond):
	}
}

// checkDiscovery checks a device discovery payload field by field against
// Home Assistant's documented schema (docs/home-assistant.md cites it).
func checkDiscovery(t *testing.T, payload []byte) {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(payload, &d); err != nil {
		t.Fatalf("discovery payload: %v", err)
	}
	str := func(m map[string]any, k, want string) {
		t.Helper()
		if got, _ := m[k].(string); got != want {
			t.Errorf("%s = %v, want %q", k, m[k], want)
		}
	}
	dev, _ := d["dev"].(map[string]any)
	if dev == nil {
		t.Fatal("no dev mapping")
	}
	if ids, _ := dev["ids"].([]any); len(ids) != 1 || ids[0] != "palid_cam1" {
		t.Errorf("dev.ids = %v", dev["ids"])
	}
	str(dev, "name", "palid cam1")
	str(dev, "mf", "palid")
	str(dev, "mdl", "demo")
	str(dev, "sw", "0.1.0-test")
	o, _ := d["o"].(map[string]any)
	if o == nil {
		t.Fatal("no o (origin) mapping")
	}
	str(o, "name", "palid")
	str(d, "availability_topic", "palid/cam1/available")
	str(d, "payload_available", "online")
	str(d, "payload_not_available", "offline")
	if d["qos"] != 1.0 {
		t.Errorf("qos = %v", d["qos"])
	}
	cmps, _ := d["cmps"].(map[string]any)
	type want struct {
		platform string
		fields   map[string]any
	}
	wants := map[string]want{
		"answer": {"sensor", map[string]any{"state_topic": "palid/cam1/answer/state", "value_template": "{{ value_json.state }}",
			"json_attributes_topic": "palid/cam1/answer/state", "json_attributes_template": "{{ value_json.attributes | tojson }}"}},
		"question":     {"text", map[string]any{"command_topic": "palid/cam1/question/set", "state_topic": "palid/cam1/question/state", "max": 255.0, "mode": "text"}},
		"ask":          {"button", map[string]any{"command_topic": "palid/cam1/question/ask", "payload_press": "PRESS"}},
		"snapshot":     {"image", map[string]any{"image_topic": "palid/cam1/snapshot", "content_type": "image/jpeg"}},
		"answer_event": {"event", map[string]any{"state_topic": "palid/cam1/answer"}},
		"busy": {"binary_sensor", map[string]any{"state_topic": "palid/cam1/status", "device_class": "running",
			"value_template": "{{ 'ON' if value_json.state == 'busy' else 'OFF' }}", "payload_on": "ON", "payload_off": "OFF"}},
		"camera_problem": {"binary_sensor", map[string]any{"state_topic": "palid/cam1/status", "device_class": "problem",
			"value_template": "{{ 'OFF' if value_json.camera == 'ok' else 'ON' }}", "entity_category": "diagnostic"}},
		"mode":     {"select", map[string]any{"command_topic": "palid/cam1/mode/set", "state_topic": "palid/cam1/mode/state"}},
		"interval": {"number", map[string]any{"command_topic": "palid/cam1/interval/set", "state_topic": "palid/cam1/interval/state", "min": 1.0, "max": 86400.0, "unit_of_measurement": "s"}},
		"enabled":  {"switch", map[string]any{"command_topic": "palid/cam1/enabled/set", "state_topic": "palid/cam1/enabled/state", "payload_on": "ON", "payload_off": "OFF"}},
	}
	if len(cmps) != len(wants) {
		t.Errorf("%d components, want %d", len(cmps), len(wants))
	}
	uids := map[string]bool{}
	for id, w := range wants {
		c, _ := cmps[id].(map[string]any)
		if c == nil {
			t.Errorf("component %s missing", id)
			continue
		}
		str(c, "p", w.platform)
		str(c, "unique_id", "palid_cam1_"+id)
		uids[c["unique_id"].(string)] = true
		if name, _ := c["name"].(string); name == "" {
			t.Errorf("component %s has no name", id)
		}
		for k, v := range w.fields {
			if c[k] != v {
				t.Errorf("cmps.%s.%s = %v, want %v", id, k, c[k], v)
			}
		}
	}
	if ev, _ := cmps["answer_event"].(map[string]any); ev != nil {
		if fmt.Sprint(ev["event_types"]) != "[answer error]" {
			t.Errorf("event_types = %v", ev["event_types"])
		}
	}
	if m, _ := cmps["mode"].(map[string]any); m != nil && fmt.Sprint(m["options"]) != "[frame video]" {
		t.Errorf("mode options = %v", m["options"])
	}
	if len(uids) != len(wants) {
		t.Error("unique_id values are not unique")
	}
}

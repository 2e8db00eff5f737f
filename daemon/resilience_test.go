package daemon

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/palid/palid/internal/mosquittotest"
	"github.com/palid/palid/mqtt"
)

// TestBrokerRestartMidBurst kills the broker in the middle of a burst of 50
// queries to the real daemon and restarts it: every query gets exactly one
// answer once it is back (a byte-identical copy is QoS 1's at-least-once
// delivery, not a second answer), none lost.
func TestBrokerRestartMidBurst(t *testing.T) {
	b := mosquittotest.Start(t)
	startDaemon(t, b.URL(), func(c *Config) { c.Queue.Max = 64; c.Queue.DefaultTimeout = time.Minute })
	var mu sync.Mutex
	first := map[string]string{}
	copies := 0
	opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("burst-asker").SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			var r mqtt.Response
			if err := json.Unmarshal(m.Payload(), &r); err != nil {
				t.Errorf("response %q: %v", m.Payload(), err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := first[r.Transaction]; ok {
				if prev != string(m.Payload()) {
					t.Errorf("%s answered twice: %s and %s", r.Transaction, prev, m.Payload())
				}
				copies++
				return
			}
			first[r.Transaction] = string(m.Payload())
		})
	pc := paho.NewClient(opts)
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pc.Disconnect(50)
	if tok := pc.Subscribe("palid/cam/response/ask", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	const n = 50
	for i := range n {
		if i == 20 {
			b.Stop()
			go func() { time.Sleep(700 * time.Millisecond); b.Restart() }()
		}
		pc.Publish("palid/cam/request/ask", 1, false, fmt.Sprintf(`{"question": "caption en", "transaction": "q%02d", "max_tokens": 3}`, i))
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		got := len(first)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%d of %d queries answered after the broker returned", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // room for a second answer to show up
	mu.Lock()
	defer mu.Unlock()
	ok := 0
	ids := map[string]bool{}
	for tx, p := range first {
		var r mqtt.Response
		json.Unmarshal([]byte(p), &r)
		if r.Status == mqtt.StatusOK {
			ok++
			ids[r.Data.ID] = true
		} else {
			t.Errorf("%s: %s", tx, p)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct answer ids for %d queries", len(ids), n)
	}
	t.Logf("%d answered ok, %d QoS 1 copies", ok, copies)
}

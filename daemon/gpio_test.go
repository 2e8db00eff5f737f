package daemon

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/palid/palid/internal/mosquittotest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// TestGPIOTriggerAndBusyLED drives the GPIO trigger with periph's gpiotest
// pins: an edge asks the standing question (answer event with source gpio),
// edges inside the debounce time count once, and the LED is lit exactly
// while the worker is busy.
func TestGPIOTriggerAndBusyLED(t *testing.T) {
	b := mosquittotest.Start(t)
	d := startDaemon(t, b.URL(), func(c *Config) {
		c.Question.Text = "answer en is there a red circle?"
		c.GPIO.Debounce = 300 * time.Millisecond
	})
	s := subscribe(t, b.URL(), "palid/cam/answer")
	trigger := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level, 4)}
	led := &gpiotest.Pin{N: "GPIO27"}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	spawn := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	if err := d.watchGPIO(ctx, spawn, trigger, led); err != nil {
		t.Fatal(err)
	}
	// Two edges 10 ms apart are one press (debounce), a third later is another.
	trigger.EdgesChan <- gpio.High
	time.Sleep(10 * time.Millisecond)
	trigger.EdgesChan <- gpio.High
	time.Sleep(500 * time.Millisecond)
	trigger.EdgesChan <- gpio.High
	answers := 0
	deadline := time.After(30 * time.Second)
	for answers < 2 {
		select {
		case m := <-s.ch:
			var ev map[string]any
			if err := json.Unmarshal(m.Payload(), &ev); err != nil {
				t.Fatal(err)
			}
			if ev["source"] != "gpio" || ev["event_type"] != "answer" || ev["question"] != "answer en is there a red circle?" {
				t.Fatalf("answer event %s", m.Payload())
			}
			answers++
		case <-deadline:
			t.Fatalf("%d of 2 answers to GPIO edges", answers)
		}
	}
	select {
	case m := <-s.ch:
		t.Fatalf("a third answer (debounce failed): %s", m.Payload())
	case <-time.After(700 * time.Millisecond):
	}
	// The LED follows the worker.
	if led.Read() != gpio.Low {
		t.Error("LED lit while idle")
	}
	release := make(chan struct{})
	d.queue.Submit(&Job{Run: func(context.Context) { <-release }})
	for !d.queue.Busy() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if led.Read() != gpio.High {
		t.Error("LED dark while busy")
	}
	close(release)
	for d.queue.Busy() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if led.Read() != gpio.Low {
		t.Error("LED lit after the job")
	}
}

package daemon

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// startGPIO finds the configured trigger (and LED) pins through periph.io
// and starts watching the trigger.
func (d *Daemon) startGPIO(ctx context.Context, spawn func(func())) error {
	if _, err := host.Init(); err != nil {
		return fmt.Errorf("gpio: %w", err)
	}
	pin := gpioreg.ByName(d.cfg.GPIO.Trigger)
	if pin == nil {
		return fmt.Errorf("gpio: no pin named %q (key gpio.trigger)", d.cfg.GPIO.Trigger)
	}
	var led gpio.PinOut
	if d.cfg.GPIO.LED != "" {
		p := gpioreg.ByName(d.cfg.GPIO.LED)
		if p == nil {
			return fmt.Errorf("gpio: no pin named %q (key gpio.led)", d.cfg.GPIO.LED)
		}
		led = p
	}
	return d.watchGPIO(ctx, spawn, pin, led)
}

// watchGPIO asks the standing question on each edge of trigger (debounced)
// and lights led, if not nil, while the worker is busy.
func (d *Daemon) watchGPIO(ctx context.Context, spawn func(func()), trigger gpio.PinIn, led gpio.PinOut) error {
	edge := gpio.RisingEdge
	pull := gpio.PullDown
	switch d.cfg.GPIO.Edge {
	case "falling":
		edge, pull = gpio.FallingEdge, gpio.PullUp
	case "both":
		edge = gpio.BothEdges
	}
	if err := trigger.In(pull, edge); err != nil {
		return fmt.Errorf("gpio: %s as input: %w", trigger, err)
	}
	if led != nil {
		if err := led.Out(gpio.Low); err != nil {
			return fmt.Errorf("gpio: %s as output: %w", led, err)
		}
		d.mu.Lock()
		d.led = led
		d.mu.Unlock()
	}
	d.log.Info("gpio trigger", "pin", trigger.String(), "edge", d.cfg.GPIO.Edge)
	spawn(func() {
		var last time.Time
		for ctx.Err() == nil {
			if !trigger.WaitForEdge(250 * time.Millisecond) {
				continue
			}
			if now := time.Now(); now.Sub(last) >= d.cfg.GPIO.Debounce {
				last = now
				d.log.Info("gpio edge", "pin", trigger.String())
				d.askStanding("gpio")
			}
		}
		trigger.Halt()
	})
	return nil
}

// showBusy drives the busy LED, if there is one.
func (d *Daemon) showBusy(busy bool) {
	d.mu.Lock()
	led := d.led
	d.mu.Unlock()
	if led == nil {
		return
	}
	lvl := gpio.Low
	if busy {
		lvl = gpio.High
	}
	led.Out(lvl)
}

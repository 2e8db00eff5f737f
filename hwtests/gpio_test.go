//go:build hwtest

package hwtests

import (
	"os"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// gpioPair returns the two pins of the loopback, named by PALID_GPIO_OUT
// and PALID_GPIO_IN (periph.io names such as GPIO17, or a number) and
// wired together on the board, through periph.io as the daemon's GPIO
// trigger finds them.
func gpioPair(t *testing.T) (out gpio.PinIO, in gpio.PinIO) {
	t.Helper()
	outName, inName := os.Getenv("PALID_GPIO_OUT"), os.Getenv("PALID_GPIO_IN")
	if outName == "" || inName == "" {
		t.Skip("no GPIO loopback configured: wire two pins together and set PALID_GPIO_OUT and PALID_GPIO_IN to their names (e.g. GPIO17, GPIO27)")
	}
	if _, err := os.Stat("/dev/gpiochip0"); err != nil {
		t.Skipf("no GPIO chip on this machine (%v)", err)
	}
	st, err := host.Init()
	if err != nil {
		t.Fatalf("periph.io host.Init: %v", err)
	}
	for _, d := range st.Loaded {
		t.Logf("periph.io driver loaded: %s", d)
	}
	for _, f := range st.Failed {
		t.Logf("periph.io driver failed: %s", f)
	}
	out, in = gpioreg.ByName(outName), gpioreg.ByName(inName)
	if out == nil {
		t.Fatalf("PALID_GPIO_OUT: periph.io knows no pin named %q", outName)
	}
	if in == nil {
		t.Fatalf("PALID_GPIO_IN: periph.io knows no pin named %q", inName)
	}
	t.Cleanup(func() {
		out.Out(gpio.Low)
		in.Halt()
		out.Halt()
	})
	t.Logf("loopback %s -> %s", out, in)
	return out, in
}

// TestGPIOLoopback drives the output pin and reads each level back on the
// input pin wired to it.
func TestGPIOLoopback(t *testing.T) {
	out, in := gpioPair(t)
	if err := out.Out(gpio.Low); err != nil {
		t.Fatalf("%s as output: %v", out, err)
	}
	if err := in.In(gpio.Float, gpio.NoEdge); err != nil {
		t.Fatalf("%s as input: %v", in, err)
	}
	for i, lvl := range []gpio.Level{gpio.High, gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
		if err := out.Out(lvl); err != nil {
			t.Fatalf("step %d: drive %s %v: %v", i, out, lvl, err)
		}
		if !settles(in, lvl, 100*time.Millisecond) {
			t.Fatalf("step %d: drove %s %v, %s reads %v: are the pins wired together?", i, out, lvl, in, in.Read())
		}
	}
}

// TestGPIOEdges checks what the daemon's GPIO trigger relies on: edges on
// the input wake WaitForEdge, rising and falling as asked, and nothing
// wakes it while the line stays still.
func TestGPIOEdges(t *testing.T) {
	out, in := gpioPair(t)
	if err := out.Out(gpio.Low); err != nil {
		t.Fatalf("%s as output: %v", out, err)
	}
	for _, c := range []struct {
		edge       gpio.Edge
		pull       gpio.Pull
		from, to   gpio.Level
		wantWakeup bool
	}{
		{gpio.RisingEdge, gpio.PullDown, gpio.Low, gpio.High, true},
		{gpio.RisingEdge, gpio.PullDown, gpio.High, gpio.Low, false},
		{gpio.FallingEdge, gpio.PullUp, gpio.High, gpio.Low, true},
		{gpio.BothEdges, gpio.Float, gpio.Low, gpio.High, true},
		{gpio.BothEdges, gpio.Float, gpio.High, gpio.Low, true},
	} {
		if err := out.Out(c.from); err != nil {
			t.Fatal(err)
		}
		if err := in.In(c.pull, c.edge); err != nil {
			t.Fatalf("%s as input with %v edges: %v", in, c.edge, err)
		}
		if !settles(in, c.from, 100*time.Millisecond) {
			t.Fatalf("%s reads %v after driving %v", in, in.Read(), c.from)
		}
		for in.WaitForEdge(20 * time.Millisecond) { // drain edges from the setup
		}
		start := time.Now()
		if err := out.Out(c.to); err != nil {
			t.Fatal(err)
		}
		woke := in.WaitForEdge(time.Second)
		if woke != c.wantWakeup {
			t.Fatalf("%v edge, %v -> %v: woke %v, want %v", c.edge, c.from, c.to, woke, c.wantWakeup)
		}
		if woke {
			t.Logf("%v edge %v -> %v seen after %v", c.edge, c.from, c.to, time.Since(start))
		}
		if in.WaitForEdge(100 * time.Millisecond) {
			t.Errorf("%v edge, %v -> %v: a second wake-up with the line still", c.edge, c.from, c.to)
		}
	}
}

// settles waits up to d for pin to read lvl.
func settles(pin gpio.PinIn, lvl gpio.Level, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if pin.Read() == lvl {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

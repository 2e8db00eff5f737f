package daemon

import "testing"

// TestExampleConfig keeps docs/example.yaml valid.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("../docs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != "porch" || c.GPIO.Trigger != "GPIO17" || c.Broker.URL == "" {
		t.Errorf("example parsed as %+v", c)
	}
}

package daemon

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if got := c.Topic(); got != "palid/palid" {
		t.Errorf("Topic() = %q", got)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
device_id: porch
source: v4l2:/dev/video0
broker:
  url: ssl://broker.lan:8883
  username: cam
  password: secret
queue:
  max: 4
  default_timeout: 12s
question:
  text: is there a package at the door?
  interval: 1m
`), "palid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != "porch" || c.Queue.Max != 4 || c.Queue.DefaultTimeout != 12*time.Second ||
		c.Question.Interval != time.Minute || c.Broker.Username != "cam" || c.Topic() != "palid/porch" {
		t.Errorf("parsed %+v", c)
	}
	// Keys not in the file keep their defaults.
	if c.Window.Frames != 16 || c.FPS != 2 {
		t.Errorf("defaults lost: %+v", c.Window)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"device_idd: x\n", "device_idd"},
		{"device_id: 'a b'\n", "key device_id"},
		{"backend: gpu\n", "key backend"},
		{"queue:\n  max: 0\n", "key queue.max"},
		{"queue:\n  max: lots\n", "line 2"},
		{"window:\n  frames: 17\n", "key window.frames"},
		{"broker:\n  url: http://x:1\n", "key broker.url"},
		{"broker:\n  cert_file: a.pem\n", "key broker.cert_file"},
		{"question:\n  mode: audio\n", "key question.mode"},
		{"question:\n  interval: 5ms\n", "key question.interval"},
		{"gpio:\n  edge: up\n", "key gpio.edge"},
		{"fps: 0\n", "key fps"},
		{"source: camera\n", "key source"},
		{"- a\n- b\n", "palid.yaml"},
	} {
		_, err := ParseConfig([]byte(tc.yaml), "palid.yaml")
		if err == nil {
			t.Errorf("%q: no error", tc.yaml)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "palid.yaml: ") {
			t.Errorf("%q: error %q does not name %q", tc.yaml, err, tc.want)
		}
	}
}

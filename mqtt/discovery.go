package mqtt

import (
	"encoding/json"
)

// DiscoveryTopic is the device-based discovery topic of Home Assistant
// (2024.11 and later): <prefix>/device/<device_id>/config.
func DiscoveryTopic(prefix, deviceID string) string {
	return prefix + "/device/" + deviceID + "/config"
}

// DiscoveryDevice is the "dev" mapping: the device in Home Assistant's
// device registry (abbreviated keys as Home Assistant documents them).
type DiscoveryDevice struct {
	Identifiers  []string `json:"ids"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"mf"`
	Model        string   `json:"mdl"`
	SWVersion    string   `json:"sw,omitempty"`
}

// DiscoveryOrigin is the "o" mapping: the software sending the discovery.
type DiscoveryOrigin struct {
	Name string `json:"name"`
	SW   string `json:"sw,omitempty"`
	URL  string `json:"url,omitempty"`
}

// Discovery is a device discovery payload: the device, the origin, shared
// availability and QoS, and one component per entity under "cmps", each
// with its platform in "p" and a unique_id.
type Discovery struct {
	Device              DiscoveryDevice           `json:"dev"`
	Origin              DiscoveryOrigin           `json:"o"`
	AvailabilityTopic   string                    `json:"availability_topic"`
	PayloadAvailable    string                    `json:"payload_available"`
	PayloadNotAvailable string                    `json:"payload_not_available"`
	QoS                 int                       `json:"qos"`
	Components          map[string]map[string]any `json:"cmps"`
}

// BuildDiscovery returns the discovery payload of a device.
func BuildDiscovery(deviceID string, t Topics, name, model, version string) Discovery {
	uid := func(s string) string { return "palid_" + deviceID + "_" + s }
	if model == "" {
		model = "palid"
	}
	return Discovery{
		Device: DiscoveryDevice{
			Identifiers:  []string{"palid_" + deviceID},
			Name:         name,
			Manufacturer: "palid",
			Model:        model,
			SWVersion:    version,
		},
		Origin:              DiscoveryOrigin{Name: "palid", SW: version, URL: "https://github.com/palid/palid"},
		AvailabilityTopic:   t.Available,
		PayloadAvailable:    "online",
		PayloadNotAvailable: "offline",
		QoS:                 1,
		Components: map[string]map[string]any{
			"answer": {
				"p":                        "sensor",
				"name":                     "Answer",
				"unique_id":                uid("answer"),
				"icon":                     "mdi:eye-outline",
				"state_topic":              t.AnswerState,
				"value_template":           "{{ value_json.state }}",
				"json_attributes_topic":    t.AnswerState,
				"json_attributes_template": "{{ value_json.attributes | tojson }}",
			},
			"question": {
				"p":             "text",
				"name":          "Question",
				"unique_id":     uid("question"),
				"icon":          "mdi:chat-question-outline",
				"command_topic": t.QuestionSet,
				"state_topic":   t.QuestionState,
				"min":           1,
				"max":           255,
				"mode":          "text",
			},
			"ask": {
				"p":             "button",
				"name":          "Ask",
				"unique_id":     uid("ask"),
				"icon":          "mdi:send",
				"command_topic": t.QuestionAsk,
				"payload_press": "PRESS",
			},
			"snapshot": {
				"p":            "image",
				"name":         "Last frame",
				"unique_id":    uid("snapshot"),
				"image_topic":  t.Snapshot,
				"content_type": "image/jpeg",
			},
			"answer_event": {
				"p":           "event",
				"name":        "Answer event",
				"unique_id":   uid("answer_event"),
				"state_topic": t.Answer,
				"event_types": []string{EventAnswer, EventError},
			},
			"busy": {
				"p":              "binary_sensor",
				"name":           "Busy",
				"unique_id":      uid("busy"),
				"device_class":   "running",
				"state_topic":    t.Status,
				"value_template": "{{ 'ON' if value_json.state == 'busy' else 'OFF' }}",
				"payload_on":     "ON",
				"payload_off":    "OFF",
			},
			"camera_problem": {
				"p":               "binary_sensor",
				"name":            "Camera problem",
				"unique_id":       uid("camera_problem"),
				"device_class":    "problem",
				"entity_category": "diagnostic",
				"state_topic":     t.Status,
				"value_template":  "{{ 'OFF' if value_json.camera == 'ok' else 'ON' }}",
				"payload_on":      "ON",
				"payload_off":     "OFF",
			},
			"mode": {
				"p":             "select",
				"name":          "Question mode",
				"unique_id":     uid("mode"),
				"command_topic": t.ModeSet,
				"state_topic":   t.ModeState,
				"options":       []string{string(ModeFrame), string(ModeVideo)},
			},
			"interval": {
				"p":                   "number",
				"name":                "Question interval",
				"unique_id":           uid("interval"),
				"command_topic":       t.IntervalSet,
				"state_topic":         t.IntervalState,
				"min":                 MinInterval.Seconds(),
				"max":                 MaxInterval.Seconds(),
				"step":                1,
				"mode":                "box",
				"unit_of_measurement": "s",
			},
			"enabled": {
				"p":             "switch",
				"name":          "Ask on interval",
				"unique_id":     uid("enabled"),
				"command_topic": t.EnabledSet,
				"state_topic":   t.EnabledState,
				"payload_on":    "ON",
				"payload_off":   "OFF",
			},
		},
	}
}

// publishDiscovery sends the device discovery payload (not retained: it is
// sent on every connection and whenever Home Assistant comes online).
func (c *Client) publishDiscovery() {
	if c.disco == "" || !c.pc.IsConnectionOpen() {
		return
	}
	d := BuildDiscovery(c.cfg.DeviceID, c.topics, c.cfg.DeviceName, c.cfg.Model, c.cfg.Version)
	b, err := json.Marshal(d)
	if err != nil {
		c.log.Error("discovery payload", "err", err)
		return
	}
	c.pc.Publish(c.disco, 1, false, b)
}

package mqtt

import (
	"fmt"
	"regexp"
	"strings"
)

// Topics are the MQTT topics of one device (DESIGN.md §4).
type Topics struct {
	Base          string // <p>, e.g. palid/kitchen
	Available     string // <p>/available, retained online/offline, also the will
	Info          string // <p>/info, retained
	Status        string // <p>/status, retained
	RequestAsk    string // <p>/request/ask, in
	ResponseAsk   string // <p>/response/ask, out
	Answer        string // <p>/answer, out
	AnswerState   string // <p>/answer/state, retained
	Snapshot      string // <p>/snapshot, retained JPEG
	QuestionSet   string // <p>/question/set, in
	QuestionState string // <p>/question/state, retained
	QuestionAsk   string // <p>/question/ask, in: ask the standing question now
	ModeSet       string // <p>/mode/set, in
	ModeState     string // <p>/mode/state, retained
	IntervalSet   string // <p>/interval/set, in
	IntervalState string // <p>/interval/state, retained
	EnabledSet    string // <p>/enabled/set, in
	EnabledState  string // <p>/enabled/state, retained
}

// NewTopics returns the topics under base (no trailing slash).
func NewTopics(base string) Topics {
	p := strings.TrimSuffix(base, "/")
	return Topics{
		Base:          p,
		Available:     p + "/available",
		Info:          p + "/info",
		Status:        p + "/status",
		RequestAsk:    p + "/request/ask",
		ResponseAsk:   p + "/response/ask",
		Answer:        p + "/answer",
		AnswerState:   p + "/answer/state",
		Snapshot:      p + "/snapshot",
		QuestionSet:   p + "/question/set",
		QuestionState: p + "/question/state",
		QuestionAsk:   p + "/question/ask",
		ModeSet:       p + "/mode/set",
		ModeState:     p + "/mode/state",
		IntervalSet:   p + "/interval/set",
		IntervalState: p + "/interval/state",
		EnabledSet:    p + "/enabled/set",
		EnabledState:  p + "/enabled/state",
	}
}

// DefaultBaseTopic is the base topic of a device: palid/<device_id>.
func DefaultBaseTopic(deviceID string) string { return "palid/" + deviceID }

var deviceIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateDeviceID checks that id can name MQTT topics and a Home Assistant
// discovery topic: 1 to 64 of A-Z, a-z, 0-9, _ and -.
func ValidateDeviceID(id string) error {
	if !deviceIDRe.MatchString(id) {
		return fmt.Errorf("device id %q: want 1 to 64 characters from A-Z a-z 0-9 _ -", clip(id))
	}
	return nil
}

// ValidateTopicPrefix checks a base topic or discovery prefix: not empty, no
// wildcards, no NUL, no leading or trailing slash.
func ValidateTopicPrefix(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s is empty", what)
	case strings.ContainsAny(p, "+#\x00"):
		return fmt.Errorf("%s %q: must not contain + # or NUL", what, clip(p))
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return fmt.Errorf("%s %q: must not start or end with /", what, clip(p))
	case len(p) > 1024:
		return fmt.Errorf("%s is %d bytes, above 1024", what, len(p))
	}
	return nil
}

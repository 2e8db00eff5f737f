package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Mode says which frames a question looks at.
type Mode string

// The modes of a request.
const (
	ModeFrame Mode = "frame" // the newest frame
	ModeVideo Mode = "video" // a window of up to 16 frames
)

// Format says how the answer is interpreted into Data.Value.
type Format string

// The answer formats of a request.
const (
	FormatText  Format = "text"   // the answer as it is; no value
	FormatYesNo Format = "yes_no" // value is true or false
	FormatJSON  Format = "json"   // value is the answer parsed as JSON
)

// Status values of a Response.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// Error words that start Response.Error for the failures a caller may want
// to tell apart; the rest of the message explains.
const (
	ErrWordBusy    = "busy"    // the queue was full; try again later
	ErrWordTimeout = "timeout" // the deadline passed before the answer
	ErrWordInvalid = "invalid request"
)

// Request is a question sent to <p>/request/ask (DESIGN.md §4). The JSON
// names are the API; zero values mean "the daemon's default".
type Request struct {
	Question    string  `json:"question"`
	Mode        Mode    `json:"mode,omitempty"`
	Frames      int     `json:"frames,omitempty"`
	Stride      int     `json:"stride,omitempty"`
	MaxTokens   int     `json:"max_tokens,omitempty"`
	TimeoutS    float64 `json:"timeout_s,omitempty"`
	Format      Format  `json:"format,omitempty"`
	Snapshot    bool    `json:"snapshot,omitempty"`
	Transaction string  `json:"transaction,omitempty"`

	// Received is when the request arrived (set by the Client, not JSON).
	Received time.Time `json:"-"`
}

// Timeout is the request's own deadline budget, 0 when it set none.
func (r Request) Timeout() time.Duration {
	return time.Duration(r.TimeoutS * float64(time.Second))
}

// Data is the answer part of a Response and of an AnswerEvent.
type Data struct {
	ID         string    `json:"id"`
	Question   string    `json:"question"`
	Answer     string    `json:"answer"`
	Value      any       `json:"value,omitempty"` // yes_no: bool; json: the parsed answer
	Mode       Mode      `json:"mode"`
	Frames     int       `json:"frames"`
	CapturedAt time.Time `json:"captured_at"`
	Model      string    `json:"model"`
	LatencyMS  float64   `json:"latency_ms"`
	QueueMS    float64   `json:"queue_ms"`
}

// Response is published on <p>/response/ask for every request.
type Response struct {
	Status      string `json:"status"` // StatusOK or StatusError
	Transaction string `json:"transaction,omitempty"`
	Data        *Data  `json:"data,omitempty"`
	Error       string `json:"error,omitempty"`
}

// ErrorResponse builds a StatusError response for the transaction.
func ErrorResponse(transaction, msg string) Response {
	return Response{Status: StatusError, Transaction: transaction, Error: msg}
}

// Event types of an AnswerEvent.
const (
	EventAnswer = "answer"
	EventError  = "error"
)

// AnswerEvent is published on <p>/answer for every answer from any trigger.
// Its fields are flat: event_type, source, then the Data fields. Home
// Assistant's MQTT event entity reads event_type.
type AnswerEvent struct {
	EventType   string `json:"event_type"` // EventAnswer or EventError
	Source      string `json:"source"`     // "mqtt", "interval", "gpio", "http", "button"
	Transaction string `json:"transaction,omitempty"`
	Error       string `json:"error,omitempty"`
	*Data
}

// AnswerState is the retained <p>/answer/state payload: the answer cut to
// StateMaxRunes characters (Home Assistant's limit for a state) and the
// whole event in attributes.
type AnswerState struct {
	State      string      `json:"state"`
	Attributes AnswerEvent `json:"attributes"`
}

// StateMaxRunes is the longest state Home Assistant accepts.
const StateMaxRunes = 255

// CutState shortens s to at most StateMaxRunes characters, ending a cut
// string with "…".
func CutState(s string) string {
	if utf8.RuneCountInString(s) <= StateMaxRunes {
		return s
	}
	r := []rune(s)
	return string(r[:StateMaxRunes-1]) + "…"
}

// NewAnswerState builds the retained state for an answer event.
func NewAnswerState(ev AnswerEvent) AnswerState {
	st := AnswerState{Attributes: ev}
	if ev.Data != nil {
		st.State = CutState(ev.Data.Answer)
	}
	if ev.EventType == EventError {
		st.State = CutState(ev.Error)
	}
	return st
}

// Status is the retained <p>/status payload.
type Status struct {
	State         string    `json:"state"`  // warming, idle, busy, error
	Camera        string    `json:"camera"` // ok, lost
	Queue         int       `json:"queue"`
	LastLatencyMS float64   `json:"last_latency_ms"`
	LastError     string    `json:"last_error"`
	TS            time.Time `json:"ts"`
}

// Info is the retained <p>/info payload.
type Info struct {
	Version      string `json:"version"`
	Model        string `json:"model"`
	Backend      string `json:"backend"`
	Camera       string `json:"camera"`
	WindowFrames int    `json:"window_frames"`
	MaxQueue     int    `json:"max_queue"`
}

// Limits bound what a request may ask for.
type Limits struct {
	MaxQuestionBytes int           // longest question, in bytes (default 4096)
	MaxPayloadBytes  int           // longest request payload (default 64 KiB)
	MaxFrames        int           // most frames of a video request (default 16)
	MaxStride        int           // largest stride between frames (default 64)
	MaxTokens        int           // largest max_tokens (default 256)
	MaxTimeout       time.Duration // largest timeout_s (default 10 minutes)
}

// DefaultLimits returns the limits used when a Limits field is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxQuestionBytes: 4096,
		MaxPayloadBytes:  64 << 10,
		MaxFrames:        16,
		MaxStride:        64,
		MaxTokens:        256,
		MaxTimeout:       10 * time.Minute,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxQuestionBytes <= 0 {
		l.MaxQuestionBytes = d.MaxQuestionBytes
	}
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = d.MaxPayloadBytes
	}
	if l.MaxFrames <= 0 {
		l.MaxFrames = d.MaxFrames
	}
	if l.MaxStride <= 0 {
		l.MaxStride = d.MaxStride
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = d.MaxTokens
	}
	if l.MaxTimeout <= 0 {
		l.MaxTimeout = d.MaxTimeout
	}
	return l
}

// RequestError is a request that cannot be run; Field names the JSON field
// at fault ("" for the payload as a whole).
type RequestError struct {
	Field   string
	Problem string
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

func reqErr(field, format string, args ...any) error {
	return &RequestError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ParseRequest reads a request payload: JSON (an object with the fields of
// Request) or plain text (a frame question). Parsing is strict: invalid
// JSON, wrong types, unknown fields, modes and formats, values out of
// limits, an empty or oversized question and text that is not UTF-8 are
// errors (*RequestError) naming the field and the problem. Even then the
// returned Request carries the transaction when one could be read, so that
// the error reply can be correlated. Mode and Format default to frame and
// text.
func ParseRequest(payload []byte, limits Limits) (Request, error) {
	limits = limits.withDefaults()
	var req Request
	trimmed := bytes.TrimSpace(payload)
	isJSON := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
	if isJSON {
		req.Transaction = recoverTransaction(trimmed)
	}
	if len(payload) > limits.MaxPayloadBytes {
		return req, reqErr("", "payload is %d bytes, above the limit of %d", len(payload), limits.MaxPayloadBytes)
	}
	if !utf8.Valid(payload) {
		return req, reqErr("", "payload is not UTF-8 text (invalid byte at offset %d)", invalidUTF8At(payload))
	}
	if !isJSON {
		req.Question = string(trimmed)
		req.Mode, req.Format = ModeFrame, FormatText
		if err := checkQuestion(req.Question, limits); err != nil {
			return req, err
		}
		return req, nil
	}
	if trimmed[0] == '[' {
		return req, reqErr("", "payload is a JSON array; want a JSON object or plain text")
	}
	if err := decodeStrict(trimmed, &req); err != nil {
		return req, err
	}
	return req, validate(&req, limits)
}

// decodeStrict decodes one JSON object into req, refusing unknown fields and
// trailing data, and turns encoding/json's errors into RequestErrors.
func decodeStrict(data []byte, req *Request) error {
	// A field given as null would silently keep its zero value; refuse it,
	// and find out whether "question" is there at all.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return jsonError(err, data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return jsonError(err, data)
	}
	if _, err := dec.Token(); err != io.EOF {
		return reqErr("", "trailing data after the JSON object")
	}
	for _, name := range []string{"question", "mode", "frames", "stride", "max_tokens", "timeout_s", "format", "snapshot", "transaction"} {
		raw, ok := fields[name]
		if !ok {
			if name == "question" {
				return reqErr("question", "missing")
			}
			continue
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			return reqErr(name, "is null; leave the field out instead")
		}
	}
	// Zero means "the default" in Request; given explicitly it is out of range.
	for _, f := range []struct {
		name string
		v    int
	}{{"frames", req.Frames}, {"stride", req.Stride}, {"max_tokens", req.MaxTokens}} {
		if _, ok := fields[f.name]; ok && f.v == 0 {
			return reqErr(f.name, "0 is below 1")
		}
	}
	if _, ok := fields["timeout_s"]; ok && req.TimeoutS == 0 {
		return reqErr("timeout_s", "0 is not a positive number of seconds")
	}
	return nil
}

// jsonError explains a decoding error, naming the field when there is one.
func jsonError(err error, data []byte) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return reqErr("", "payload is JSON %s; want an object", typeErr.Value)
		}
		return reqErr(field, "want %s, got %s", describeType(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr) && strings.Contains(syntaxErr.Error(), "after top-level value"):
		return reqErr("", "trailing data after the JSON object (byte %d)", syntaxErr.Offset)
	case errors.As(err, &syntaxErr):
		return reqErr("", "invalid JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return reqErr("", "invalid JSON: unexpected end of input after %d bytes", len(data))
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(rest)
		return reqErr(name, "unknown field")
	}
	return reqErr("", "invalid JSON: %s", strings.TrimPrefix(msg, "json: "))
}

func describeType(kind string) string {
	switch kind {
	case "int", "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	}
	return kind
}

// validate checks the values of a decoded JSON request and fills defaults.
func validate(req *Request, l Limits) error {
	req.Question = strings.TrimSpace(req.Question)
	if err := checkQuestion(req.Question, l); err != nil {
		return err
	}
	switch req.Mode {
	case "":
		req.Mode = ModeFrame
	case ModeFrame, ModeVideo:
	default:
		return reqErr("mode", "unknown mode %q (want frame or video)", clip(string(req.Mode)))
	}
	switch req.Format {
	case "":
		req.Format = FormatText
	case FormatText, FormatYesNo, FormatJSON:
	default:
		return reqErr("format", "unknown format %q (want text, yes_no or json)", clip(string(req.Format)))
	}
	switch {
	case req.Frames < 0:
		return reqErr("frames", "%d is below 1", req.Frames)
	case req.Frames > l.MaxFrames:
		return reqErr("frames", "%d is above the limit of %d", req.Frames, l.MaxFrames)
	case req.Mode == ModeFrame && req.Frames > 1:
		return reqErr("frames", "%d frames need mode video", req.Frames)
	}
	if req.Stride < 0 || req.Stride > l.MaxStride {
		return reqErr("stride", "%d is outside 1..%d", req.Stride, l.MaxStride)
	}
	if req.MaxTokens < 0 || req.MaxTokens > l.MaxTokens {
		return reqErr("max_tokens", "%d is outside 1..%d", req.MaxTokens, l.MaxTokens)
	}
	if req.TimeoutS < 0 || req.TimeoutS != req.TimeoutS || req.Timeout() > l.MaxTimeout || req.TimeoutS > l.MaxTimeout.Seconds() {
		return reqErr("timeout_s", "%g is outside 0..%g seconds", req.TimeoutS, l.MaxTimeout.Seconds())
	}
	if len(req.Transaction) > 256 {
		return reqErr("transaction", "%d bytes, above the limit of 256", len(req.Transaction))
	}
	return nil
}

func checkQuestion(q string, l Limits) error {
	if q == "" {
		return reqErr("question", "empty")
	}
	if len(q) > l.MaxQuestionBytes {
		return reqErr("question", "%d bytes, above the limit of %d", len(q), l.MaxQuestionBytes)
	}
	for i, r := range q {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return reqErr("question", "contains control character U+%04X at byte %d", r, i)
		}
	}
	return nil
}

// recoverTransaction reads "transaction" from a JSON object leniently,
// whatever else is wrong with it. A non-string transaction is returned as
// its JSON text.
func recoverTransaction(data []byte) string {
	var m struct {
		Transaction json.RawMessage `json:"transaction"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return scanTransaction(data)
	}
	if len(m.Transaction) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(m.Transaction, &s) != nil {
		s = string(m.Transaction)
	}
	if len(s) > 256 || !utf8.ValidString(s) {
		return ""
	}
	return s
}

// scanTransaction finds a top-level "transaction" string in a JSON object
// that does not parse as a whole (truncated, or broken after the field), so
// that the error reply can still be correlated.
func scanTransaction(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "transaction" {
			if tok, err := dec.Token(); err == nil {
				if s, ok := tok.(string); ok && len(s) <= 256 && utf8.ValidString(s) {
					return s
				}
			}
			return ""
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// clip keeps user text quoted in errors short.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// SettingKind names a standing-question topic.
type SettingKind string

// The standing-question settings, each under <p>/<kind>/set.
const (
	SettingQuestion SettingKind = "question" // the standing question
	SettingMode     SettingKind = "mode"     // frame or video
	SettingInterval SettingKind = "interval" // seconds between asks
	SettingEnabled  SettingKind = "enabled"  // ON or OFF
	SettingAsk      SettingKind = "ask"      // <p>/question/ask: ask the standing question now
)

// Setting is one change to the standing question, from a set topic.
type Setting struct {
	Kind     SettingKind
	Question string        // SettingQuestion
	Mode     Mode          // SettingMode
	Interval time.Duration // SettingInterval
	Enabled  bool          // SettingEnabled
}

// Standing is the standing question and its schedule, published retained on
// the state topics.
type Standing struct {
	Question string
	Mode     Mode
	Interval time.Duration
	Enabled  bool
}

// MinInterval and MaxInterval bound the standing question's interval.
const (
	MinInterval = time.Second
	MaxInterval = 24 * time.Hour
)

// ParseSetting reads the payload of a set topic. Intervals are seconds
// ("30", "2.5") or Go durations ("5m"); enabled is ON/OFF, true/false or
// 1/0, any case.
func ParseSetting(kind SettingKind, payload []byte, limits Limits) (Setting, error) {
	limits = limits.withDefaults()
	s := Setting{Kind: kind}
	if !utf8.Valid(payload) {
		return s, reqErr(string(kind), "payload is not UTF-8 text")
	}
	text := strings.TrimSpace(string(payload))
	switch kind {
	case SettingAsk:
	case SettingQuestion:
		if err := checkQuestion(text, limits); err != nil {
			return s, err
		}
		s.Question = text
	case SettingMode:
		switch Mode(strings.ToLower(text)) {
		case ModeFrame, ModeVideo:
			s.Mode = Mode(strings.ToLower(text))
		default:
			return s, reqErr("mode", "unknown mode %q (want frame or video)", clip(text))
		}
	case SettingInterval:
		d, err := parseInterval(text)
		if err != nil {
			return s, err
		}
		s.Interval = d
	case SettingEnabled:
		switch strings.ToLower(text) {
		case "on", "true", "1":
			s.Enabled = true
		case "off", "false", "0":
		default:
			return s, reqErr("enabled", "%q is not ON or OFF", clip(text))
		}
	default:
		return s, reqErr("", "unknown setting %q", kind)
	}
	return s, nil
}

func parseInterval(text string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		if f != f || f < 0 || f > MaxInterval.Seconds() {
			return 0, reqErr("interval", "%q is outside %v..%v", clip(text), MinInterval, MaxInterval)
		}
		d = time.Duration(f * float64(time.Second))
	} else if d, err = time.ParseDuration(text); err != nil {
		return 0, reqErr("interval", "%q is not a number of seconds or a duration like 30s", clip(text))
	}
	if d < MinInterval || d > MaxInterval {
		return 0, reqErr("interval", "%v is outside %v..%v", d, MinInterval, MaxInterval)
	}
	return d, nil
}

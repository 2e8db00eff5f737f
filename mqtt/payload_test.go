package mqtt

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseRequestValid(t *testing.T) {
	tests := []struct {
		in   string
		want Request
	}{
		{"is there a package at the door?", Request{Question: "is there a package at the door?", Mode: ModeFrame, Format: FormatText}},
		{"  what color is the car?\n", Request{Question: "what color is the car?", Mode: ModeFrame, Format: FormatText}},
		{`{"question": "which way did the car go?", "mode": "video", "frames": 16, "stride": 2, "max_tokens": 20, "timeout_s": 12.5, "format": "text", "snapshot": true, "transaction": "t-1"}`,
			Request{Question: "which way did the car go?", Mode: ModeVideo, Frames: 16, Stride: 2, MaxTokens: 20, TimeoutS: 12.5, Format: FormatText, Snapshot: true, Transaction: "t-1"}},
		{`{"question":"is the door open?","format":"yes_no"}`, Request{Question: "is the door open?", Mode: ModeFrame, Format: FormatYesNo}},
		{`{"question":"count","format":"json","frames":1}`, Request{Question: "count", Mode: ModeFrame, Format: FormatJSON, Frames: 1}},
		{"caption en", Request{Question: "caption en", Mode: ModeFrame, Format: FormatText}},
		{"¿qué ves? 看", Request{Question: "¿qué ves? 看", Mode: ModeFrame, Format: FormatText}},
	}
	for _, tt := range tests {
		got, err := ParseRequest([]byte(tt.in), Limits{})
		if err != nil {
			t.Errorf("ParseRequest(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRequest(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	big := strings.Repeat("a", 5000)
	tests := []struct {
		in       string
		field    string // RequestError.Field
		contains string
		tx       string // transaction to recover
	}{
		{``, "question", "empty", ""},
		{"   \n", "question", "empty", ""},
		{`{"question": "x", "transaction": "a1"`, "", "invalid JSON", "a1"}, // truncated: the transaction is still recovered
		{`{"question": "x" "transaction": "a1"}`, "", "invalid JSON at byte", ""},
		{`{"question": 42, "transaction": "a2"}`, "question", "want a string, got number", "a2"},
		{`{"question": "x", "frames": "16", "transaction": "a3"}`, "frames", "want an integer, got string", "a3"},
		{`{"question": "x", "frames": 2.5, "transaction": "a4"}`, "frames", "want an integer", "a4"},
		{`{"question": "x", "snapshot": "yes", "transaction": "a5"}`, "snapshot", "want true or false", "a5"},
		{`{"question": "x", "colour": "red", "transaction": "a6"}`, "colour", "unknown field", "a6"},
		{`{"question": "x", "mode": "movie", "transaction": "a7"}`, "mode", `unknown mode "movie"`, "a7"},
		{`{"question": "x", "format": "xml", "transaction": "a8"}`, "format", `unknown format "xml"`, "a8"},
		{`{"question": "x", "mode": "video", "frames": 17, "transaction": "a9"}`, "frames", "17 is above the limit of 16", "a9"},
		{`{"question": "x", "mode": "video", "frames": 0}`, "frames", "0 is below 1", ""},
		{`{"question": "x", "mode": "video", "frames": -3}`, "frames", "below 1", ""},
		{`{"question": "x", "frames": 4}`, "frames", "need mode video", ""},
		{`{"question": "", "transaction": "b1"}`, "question", "empty", "b1"},
		{`{"transaction": "b2"}`, "question", "missing", "b2"},
		{`{}`, "question", "missing", ""},
		{`{"question": null}`, "question", "null", ""},
		{`{"question": "` + big + `", "transaction": "b3"}`, "question", "5000 bytes, above the limit of 4096", "b3"},
		{big, "question", "above the limit", ""},
		{`{"question": "x", "transaction": 17}`, "transaction", "want a string", "17"},
		{`{"question": "x"} {"question": "y"}`, "", "trailing data", ""},
		{`[1, 2]`, "", "JSON array", ""},
		{`{"question": "x", "stride": 1000}`, "stride", "outside", ""},
		{`{"question": "x", "max_tokens": 100000}`, "max_tokens", "outside", ""},
		{`{"question": "x", "timeout_s": -1}`, "timeout_s", "outside", ""},
		{`{"question": "x", "timeout_s": 1e300}`, "timeout_s", "outside", ""},
		{`{"question": "x", "timeout_s": 0}`, "timeout_s", "positive", ""},
		{"what\x00is this", "question", "control character U+0000", ""},
		{"\xff\xfe\x00garbage\x80", "", "not UTF-8", ""},
		{`{"question": "x\u0007", "transaction": "c1"}`, "question", "control character U+0007", "c1"},
		{`{"question": "` + "\xff" + `", "transaction": "c2"}`, "", "not UTF-8", "c2"},
		{`{"question": "x", "question2": 1}`, "question2", "unknown field", ""},
	}
	for _, tt := range tests {
		req, err := ParseRequest([]byte(tt.in), Limits{})
		if err == nil {
			t.Errorf("ParseRequest(%.60q) = %+v, want an error", tt.in, req)
			continue
		}
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("ParseRequest(%.60q) error %T %v, want *RequestError", tt.in, err, err)
			continue
		}
		if re.Field != tt.field || !strings.Contains(err.Error(), tt.contains) {
			t.Errorf("ParseRequest(%.60q) error field %q %q, want field %q containing %q", tt.in, re.Field, err, tt.field, tt.contains)
		}
		if req.Transaction != tt.tx {
			t.Errorf("ParseRequest(%.60q) recovered transaction %q, want %q", tt.in, req.Transaction, tt.tx)
		}
	}
}

func TestParseRequestTenMegabytes(t *testing.T) {
	payload := []byte(`{"question": "` + strings.Repeat("b", 10<<20) + `", "transaction": "huge"}`)
	req, err := ParseRequest(payload, Limits{})
	if err == nil || !strings.Contains(err.Error(), "above the limit of 65536") {
		t.Fatalf("err = %v, want payload size error", err)
	}
	if req.Transaction != "huge" {
		t.Errorf("transaction %q, want huge", req.Transaction)
	}
}

func TestCutState(t *testing.T) {
	short := strings.Repeat("é", 255)
	if CutState(short) != short {
		t.Error("a 255-character state was cut")
	}
	long := strings.Repeat("é", 1000)
	got := CutState(long)
	if n := utf8.RuneCountInString(got); n != 255 {
		t.Errorf("cut state has %d characters, want 255", n)
	}
	if !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("cut state %q is not a prefix of the answer plus …", got[:20])
	}
	st := NewAnswerState(AnswerEvent{EventType: EventAnswer, Source: "mqtt", Data: &Data{Answer: long}})
	b, _ := json.Marshal(st)
	var back struct {
		State      string         `json:"state"`
		Attributes map[string]any `json:"attributes"`
	}
	json.Unmarshal(b, &back)
	if back.State != got || back.Attributes["answer"] != long || back.Attributes["event_type"] != "answer" || back.Attributes["source"] != "mqtt" {
		t.Errorf("answer state JSON %s...", b[:80])
	}
}

func TestPayloadShapes(t *testing.T) {
	// The JSON names are the API (DESIGN.md §4); pin them.
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &Data{ID: "q1", Question: "is the door open?", Answer: "no", Value: false, Mode: ModeFrame, Frames: 1, CapturedAt: at, Model: "demo", LatencyMS: 12.5, QueueMS: 1}
	check := func(v any, want string) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil || string(b) != want {
			t.Errorf("JSON\n got %s\nwant %s", b, want)
		}
	}
	check(Response{Status: StatusOK, Transaction: "t", Data: d},
		`{"status":"ok","transaction":"t","data":{"id":"q1","question":"is the door open?","answer":"no","value":false,"mode":"frame","frames":1,"captured_at":"2025-01-02T03:04:05Z","model":"demo","latency_ms":12.5,"queue_ms":1}}`)
	check(ErrorResponse("t", "busy: the queue is full"), `{"status":"error","transaction":"t","error":"busy: the queue is full"}`)
	check(AnswerEvent{EventType: EventAnswer, Source: "interval", Data: d},
		`{"event_type":"answer","source":"interval","id":"q1","question":"is the door open?","answer":"no","value":false,"mode":"frame","frames":1,"captured_at":"2025-01-02T03:04:05Z","model":"demo","latency_ms":12.5,"queue_ms":1}`)
	check(AnswerEvent{EventType: EventError, Source: "gpio", Error: "camera lost"}, `{"event_type":"error","source":"gpio","error":"camera lost"}`)
	check(Status{State: "idle", Camera: "ok", Queue: 0, LastLatencyMS: 3, TS: at},
		`{"state":"idle","camera":"ok","queue":0,"last_latency_ms":3,"last_error":"","ts":"2025-01-02T03:04:05Z"}`)
	check(Info{Version: "1", Model: "demo", Backend: "neon", Camera: "synthetic:1", WindowFrames: 16, MaxQueue: 8},
		`{"version":"1","model":"demo","backend":"neon","camera":"synthetic:1","window_frames":16,"max_queue":8}`)
}

func TestParseSetting(t *testing.T) {
	good := []struct {
		kind SettingKind
		in   string
		want Setting
	}{
		{SettingQuestion, " is anyone at the door? ", Setting{Kind: SettingQuestion, Question: "is anyone at the door?"}},
		{SettingMode, "VIDEO", Setting{Kind: SettingMode, Mode: ModeVideo}},
		{SettingInterval, "30", Setting{Kind: SettingInterval, Interval: 30 * time.Second}},
		{SettingInterval, "2.5", Setting{Kind: SettingInterval, Interval: 2500 * time.Millisecond}},
		{SettingInterval, "5m", Setting{Kind: SettingInterval, Interval: 5 * time.Minute}},
		{SettingEnabled, "ON", Setting{Kind: SettingEnabled, Enabled: true}},
		{SettingEnabled, "off", Setting{Kind: SettingEnabled}},
		{SettingAsk, "PRESS", Setting{Kind: SettingAsk}},
	}
	for _, tt := range good {
		got, err := ParseSetting(tt.kind, []byte(tt.in), Limits{})
		if err != nil || got != tt.want {
			t.Errorf("ParseSetting(%s, %q) = %+v, %v; want %+v", tt.kind, tt.in, got, err, tt.want)
		}
	}
	bad := []struct {
		kind     SettingKind
		in       string
		contains string
	}{
		{SettingQuestion, "", "question: empty"},
		{SettingMode, "movie", "unknown mode"},
		{SettingInterval, "0.5", "outside"},
		{SettingInterval, "-3", "outside"},
		{SettingInterval, "NaN", "outside"},
		{SettingInterval, "soon", "not a number of seconds"},
		{SettingInterval, "48h", "outside"},
		{SettingEnabled, "maybe", "not ON or OFF"},
		{SettingEnabled, "\xff", "not UTF-8"},
	}
	for _, tt := range bad {
		_, err := ParseSetting(tt.kind, []byte(tt.in), Limits{})
		if err == nil || !strings.Contains(err.Error(), tt.contains) {
			t.Errorf("ParseSetting(%s, %q) error %v, want %q", tt.kind, tt.in, err, tt.contains)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"what is this?",
		`{"question":"x","mode":"video","frames":16,"stride":2,"max_tokens":8,"timeout_s":3,"format":"yes_no","snapshot":true,"transaction":"t"}`,
		`{"question": 1}`, `{"transaction": 5}`, `[`, `{"question":"x","frames":1e9}`, "\xff\x00", `{"question":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, err := ParseRequest(payload, Limits{})
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || err.Error() == "" {
				t.Fatalf("error %T %q is not a *RequestError with a message", err, err)
			}
			if !utf8.ValidString(req.Transaction) || len(req.Transaction) > 256 {
				t.Fatalf("recovered transaction %q", req.Transaction)
			}
			return
		}
		l := DefaultLimits()
		if req.Question == "" || len(req.Question) > l.MaxQuestionBytes || !utf8.ValidString(req.Question) {
			t.Fatalf("accepted question %q", req.Question)
		}
		if (req.Mode != ModeFrame && req.Mode != ModeVideo) || (req.Format != FormatText && req.Format != FormatYesNo && req.Format != FormatJSON) {
			t.Fatalf("accepted mode %q format %q", req.Mode, req.Format)
		}
		if req.Frames < 0 || req.Frames > 16 || (req.Mode == ModeFrame && req.Frames > 1) || req.Stride < 0 || req.MaxTokens < 0 || req.TimeoutS < 0 {
			t.Fatalf("accepted out-of-range values %+v", req)
		}
		// What the parser accepts, marshalled again, parses to the same request.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseRequest(b, Limits{})
		if err != nil || again != req {
			t.Fatalf("round trip of %+v: %+v, %v", req, again, err)
		}
	})
}

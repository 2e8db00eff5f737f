package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAsker stands in for the daemon's queue and worker (the real engine
// is tested in runtime/ and end to end in the daemon's own tests). Its
// answer describes what it was given — each image's size and dominant
// colour, or the camera — so tests see that images arrive intact and in
// order. It streams the answer word by word through OnToken.
type fakeAsker struct {
	mu    sync.Mutex
	got   []Question
	err   error         // returned instead of answering
	gate  chan struct{} // when set, Ask waits on it after the first word
	first chan struct{} // closed after the first word was streamed
}

func (f *fakeAsker) Ask(ctx context.Context, q Question) (Answer, error) {
	f.mu.Lock()
	f.got = append(f.got, q)
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return Answer{}, err
	}
	start := time.Now()
	var desc []string
	for _, img := range q.Images {
		b := img.Bounds()
		desc = append(desc, fmt.Sprintf("%dx%d %s", b.Dx(), b.Dy(), dominant(img)))
	}
	if len(desc) == 0 {
		desc = []string{"the camera"}
	}
	text := fmt.Sprintf("%s about %s", strings.ToLower(strings.TrimSpace(q.Text)), strings.Join(desc, ", "))
	words := strings.SplitAfter(text, " ")
	for i, w := range words {
		if q.OnToken != nil {
			q.OnToken(w)
		}
		if i == 0 {
			if f.first != nil {
				close(f.first)
			}
			if f.gate != nil {
				select {
				case <-f.gate:
				case <-ctx.Done():
					return Answer{}, ctx.Err()
				}
			}
		}
	}
	frames := len(q.Images)
	if frames == 0 {
		frames = 1
	}
	return Answer{
		ID: "q-7", Question: q.Text, Prompt: "answer en " + q.Text, Text: text, Tokens: len(words),
		Mode: q.Mode, Frames: frames, Model: "pali3-demo", Source: q.Source,
		Latency: time.Since(start) + 40*time.Millisecond, QueueTime: 40 * time.Millisecond,
		CapturedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}, nil
}

func (f *fakeAsker) questions() []Question {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Question(nil), f.got...)
}

// dominant names the strongest channel of an image's mean colour.
func dominant(img image.Image) string {
	var r, g, b, n uint64
	bb := img.Bounds()
	for y := bb.Min.Y; y < bb.Max.Y; y++ {
		for x := bb.Min.X; x < bb.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			r, g, b, n = r+uint64(cr), g+uint64(cg), b+uint64(cb), n+1
		}
	}
	switch {
	case r > g && r > b:
		return "red"
	case g > b:
		return "green"
	default:
		return "blue"
	}
}

var testColors = map[string]color.RGBA{
	"red":   {220, 30, 20, 255},
	"green": {20, 200, 40, 255},
	"blue":  {20, 30, 210, 255},
}

func solid(w, h int, c string) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		col := testColors[c]
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = col.R, col.G, col.B, col.A
	}
	return img
}

func jpegBytes(t testing.TB, w, h int, c string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, solid(w, h, c), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// noisyJPEG is a JPEG large enough that cutting it leaves a valid header
// and a truncated scan.
func noisyJPEG(t testing.TB) []byte {
	img := image.NewGray(image.Rect(0, 0, 128, 128))
	x := uint32(1)
	for i := range img.Pix {
		x = x*1664525 + 1013904223
		img.Pix[i] = byte(x >> 24)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if b.Len() < 6000 {
		t.Fatalf("noisy JPEG only %d bytes", b.Len())
	}
	return b.Bytes()
}

func jpegB64(t testing.TB, w, h int, c string) string {
	return base64.StdEncoding.EncodeToString(jpegBytes(t, w, h, c))
}

func testOverview() Overview {
	return Overview{
		Model: "pali3-demo", Backend: "cpu", Kernels: []string{"dotQ8AVX2", "gemmQ8AVX2"},
		Camera: CameraStatus{State: "ok", Source: "synthetic:1", Width: 64, Height: 48},
		State:  "idle", Queue: 0, QueueMax: 8,
	}
}

type testServer struct {
	*httptest.Server
	asker   *fakeAsker
	metrics *Metrics
	recent  *RecentAnswers
}

// newTestServer runs the HTTP API over a fake asker; the answers it gives
// are recorded in recent, as the daemon does.
func newTestServer(t *testing.T, opts HTTPOptions) *testServer {
	t.Helper()
	ts := &testServer{asker: &fakeAsker{}, metrics: NewMetrics(), recent: NewRecentAnswers(10)}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	snap := jpegBytes(t, 64, 48, "green")
	at := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	recording := askerFunc(func(ctx context.Context, q Question) (Answer, error) {
		a, err := ts.asker.Ask(ctx, q)
		ts.recent.Add(q, a, err)
		return a, err
	})
	srv := NewHTTPServer(opts, HTTPDeps{
		Asker:    recording,
		Snapshot: func() ([]byte, time.Time, bool) { return snap, at, true },
		Overview: func() Overview {
			ov := testOverview()
			ov.Recent = ts.recent.List()
			return ov
		},
		Metrics: ts.metrics,
	})
	ts.Server = httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type askerFunc func(ctx context.Context, q Question) (Answer, error)

func (f askerFunc) Ask(ctx context.Context, q Question) (Answer, error) { return f(ctx, q) }

// post sends body to path and returns the status and the body read.
func (ts *testServer) post(t *testing.T, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func (ts *testServer) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// openAIError checks an OpenAI-shaped error body and returns its fields.
func openAIError(t *testing.T, body []byte) (msg, typ string, param, code *string) {
	t.Helper()
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	e, ok := raw["error"]
	if !ok || len(raw) != 1 {
		t.Fatalf("error body is not {\"error\": ...}: %s", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error lacks %q: %s", k, body)
		}
	}
	json.Unmarshal(e["message"], &msg)
	json.Unmarshal(e["type"], &typ)
	json.Unmarshal(e["param"], &param)
	json.Unmarshal(e["code"], &code)
	if msg == "" || typ == "" {
		t.Fatalf("error has empty message or type: %s", body)
	}
	return msg, typ, param, code
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestHTTPHealthzAndModels(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{Version: "v1.2.3"})
	resp, body := ts.get(t, "/healthz")
	var h map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &h) != nil || h["status"] != "ok" || h["version"] != "v1.2.3" || h["camera"] != "ok" {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}

	// The OpenAI client's models.list(), as Frigate calls it.
	resp, body = ts.get(t, "/v1/models")
	var list struct {
		Object string
		Data   []struct {
			ID, Object string
			OwnedBy    string `json:"owned_by"`
			Created    int64
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || list.Object != "list" ||
		len(list.Data) != 1 || list.Data[0].ID != "pali3-demo" || list.Data[0].Object != "model" || list.Data[0].Created == 0 {
		t.Fatalf("models: %d %s", resp.StatusCode, body)
	}
	if resp, body = ts.get(t, "/v1/models/pali3-demo"); resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"pali3-demo"`) {
		t.Fatalf("model: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.get(t, "/v1/models/gpt-4o")
	if _, _, _, code := openAIError(t, body); resp.StatusCode != 404 || str(code) != "model_not_found" {
		t.Fatalf("unknown model: %d %s", resp.StatusCode, body)
	}
}

func TestHTTPNotFoundAndMethod(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	resp, body := ts.get(t, "/v1/completions")
	if _, typ, _, code := openAIError(t, body); resp.StatusCode != 404 || typ != "invalid_request_error" || str(code) != "unknown_url" {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.get(t, "/v1/chat/completions")
	if _, _, _, code := openAIError(t, body); resp.StatusCode != 405 || str(code) != "method_not_allowed" || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET chat: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = ts.post(t, "/healthz", "{}")
	if resp.StatusCode != 405 {
		t.Errorf("POST healthz: %d %s", resp.StatusCode, body)
	}
}

// chatReply is the part of a chat.completion the tests read.
type chatReply struct {
	ID      string
	Object  string
	Created int64
	Model   string
	Choices []struct {
		Index   int
		Message struct {
			Role, Content string
		}
		FinishReason string `json:"finish_reason"`
	}
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	Palid struct {
		ID        string
		Mode      string
		Frames    int
		LatencyMS float64 `json:"latency_ms"`
	}
}

func decodeReply(t *testing.T, resp *http.Response, body []byte) chatReply {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var r chatReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if !strings.HasPrefix(r.ID, "chatcmpl-") || r.Object != "chat.completion" || r.Created == 0 || len(r.Choices) != 1 ||
		r.Choices[0].Message.Role != "assistant" || r.Choices[0].FinishReason == "" {
		t.Fatalf("not a chat.completion: %s", body)
	}
	return r
}

func TestHTTPChatPlainText(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	resp, body := ts.post(t, "/v1/chat/completions", `{"model":"pali3-demo","messages":[
		{"role":"system","content":"You are a helpful assistant."},
		{"role":"user","content":"What colour is the car?"},
		{"role":"assistant","content":"Red."},
		{"role":"user","content":"Is there a package at the door?"}],"max_tokens":12,"temperature":0.2}`)
	r := decodeReply(t, resp, body)
	if got := r.Choices[0].Message.Content; got != "is there a package at the door? about the camera" {
		t.Errorf("answer %q", got)
	}
	if r.Model != "pali3-demo" || r.Usage.CompletionTokens != 10 || r.Usage.TotalTokens != 10 || r.Choices[0].FinishReason != "stop" {
		t.Errorf("reply %+v", r)
	}
	if r.Palid.ID != "q-7" || r.Palid.Frames != 1 || r.Palid.LatencyMS < 40 {
		t.Errorf("palid part %+v", r.Palid)
	}
	qs := ts.asker.questions()
	if len(qs) != 1 {
		t.Fatalf("%d questions", len(qs))
	}
	q := qs[0]
	if q.Text != "Is there a package at the door?" || q.Images != nil || q.Mode != "frame" || q.MaxTokens != 12 || q.Source != "http" || q.OnToken != nil {
		t.Errorf("question %+v", q)
	}

	// max_tokens reached: finish_reason length.
	resp, body = ts.post(t, "/chat/completions", `{"messages":[{"role":"user","content":"caption en"}],"max_completion_tokens":2,"max_tokens":50}`)
	r = decodeReply(t, resp, body)
	if r.Choices[0].FinishReason != "length" {
		t.Errorf("finish %q with 4 tokens for max 2", r.Choices[0].FinishReason)
	}
	if q := ts.asker.questions()[1]; q.MaxTokens != 2 {
		t.Errorf("max_completion_tokens did not win: %d", q.MaxTokens)
	}
}

// TestHTTPChatFrigate sends exactly what Frigate's GenAI "openai" provider
// sends (frigate/genai/openai.py, OpenAI client with base_url): a user
// message whose content is a text part holding the prompt, then one
// image_url part per thumbnail with a base64 JPEG data URL and detail
// "low"; older Frigate releases put the image parts first and the prompt
// as a bare string.
func TestHTTPChatFrigate(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{Token: "frigate-key"})
	auth := []string{"Authorization", "Bearer frigate-key", "User-Agent", "OpenAI/Python 1.54.4"}
	prompt := "Analyze the sequence of images containing the car. Describe what the car is doing."
	img1, img2 := jpegB64(t, 96, 64, "red"), jpegB64(t, 48, 32, "blue")

	// Frigate checks the model list first (list_models, get_context_size).
	if resp, body := ts.get(t, "/v1/models", auth...); resp.StatusCode != 200 {
		t.Fatalf("models: %d %s", resp.StatusCode, body)
	}

	current := fmt.Sprintf(`{"messages": [{"role": "user", "content": [{"type": "text", "text": %q}, `+
		`{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s", "detail": "low"}}, `+
		`{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s", "detail": "low"}}]}], "model": "pali3-demo"}`,
		prompt, img1, img2)
	legacy := fmt.Sprintf(`{"messages": [{"role": "user", "content": [`+
		`{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s", "detail": "low"}}, `+
		`{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s", "detail": "low"}}, %q]}], "model": "pali3-demo"}`,
		img1, img2, prompt)
	for name, body := range map[string]string{"current": current, "legacy": legacy} {
		t.Run(name, func(t *testing.T) {
			resp, data := ts.post(t, "/v1/chat/completions", body, auth...)
			r := decodeReply(t, resp, data)
			want := strings.ToLower(prompt) + " about 96x64 red, 48x32 blue"
			if got := r.Choices[0].Message.Content; got != want {
				t.Errorf("answer %q, want %q", got, want)
			}
			if r.Palid.Mode != "video" || r.Palid.Frames != 2 {
				t.Errorf("palid part %+v", r.Palid)
			}
		})
	}
	for _, q := range ts.asker.questions() {
		if q.Text != prompt || len(q.Images) != 2 || q.Mode != "video" || q.MaxTokens != 0 {
			t.Errorf("question %q mode %s images %d max %d", q.Text, q.Mode, len(q.Images), q.MaxTokens)
		}
	}
}

// TestHTTPChatLLMVision sends what Home Assistant's LLM Vision integration
// sends to an OpenAI or "Custom OpenAI" provider (providers.py): a system
// message, then one user message with an "Image 1:" label before each
// image, the images as base64 JPEG data URLs, the question last, and
// max_completion_tokens, temperature and top_p; older releases sent
// max_tokens and detail. A title request has two text-only user messages.
func TestHTTPChatLLMVision(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	img1, img2, img3 := jpegB64(t, 64, 64, "green"), jpegB64(t, 64, 64, "red"), jpegB64(t, 32, 32, "blue")
	message := "Is the garage door open?"
	current := fmt.Sprintf(`{"model": "gpt-4o-mini", "messages": [
		{"role": "system", "content": "Your task is to analyze a series of images and provide a concise event description based on user instructions. Focus on identifying and describing the actions of people, pets, and dynamic objects."},
		{"role": "user", "content": [
			{"type": "text", "text": "Image 1:"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s"}},
			{"type": "text", "text": "camera.garage:"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s"}},
			{"type": "text", "text": %q}]}],
		"max_completion_tokens": 100, "temperature": 0.5, "top_p": 0.9}`, img1, img2, message)
	legacy := fmt.Sprintf(`{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
			{"type": "text", "text": "Image 1:"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s", "detail": "high"}},
			{"type": "text", "text": %q}]}],
		"max_tokens": 100, "temperature": 0.5}`, img3, message)

	resp, body := ts.post(t, "/v1/chat/completions", current, "Authorization", "Bearer ")
	r := decodeReply(t, resp, body)
	if got, want := r.Choices[0].Message.Content, "is the garage door open? about 64x64 green, 64x64 red"; got != want {
		t.Errorf("answer %q, want %q", got, want)
	}
	resp, body = ts.post(t, "/v1/chat/completions", legacy)
	r = decodeReply(t, resp, body)
	if got, want := r.Choices[0].Message.Content, "is the garage door open? about 32x32 blue"; got != want {
		t.Errorf("answer %q, want %q", got, want)
	}
	// The title request: text only, so the camera's newest frame.
	resp, body = ts.post(t, "/v1/chat/completions", `{"model": "gpt-4o-mini", "messages": [
		{"role": "user", "content": [{"type": "text", "text": "Your job is to generate a title in the form '<object> seen' for texts."}]},
		{"role": "user", "content": [{"type": "text", "text": "Create a title for this text: a car is parked"}]}],
		"max_completion_tokens": 4096, "temperature": 0.5, "top_p": 0.9}`)
	decodeReply(t, resp, body)

	qs := ts.asker.questions()
	if len(qs) != 3 {
		t.Fatalf("%d questions", len(qs))
	}
	if qs[0].Text != message || len(qs[0].Images) != 2 || qs[0].Mode != "video" || qs[0].MaxTokens != 100 {
		t.Errorf("current: %q %d %s %d", qs[0].Text, len(qs[0].Images), qs[0].Mode, qs[0].MaxTokens)
	}
	if qs[1].Text != message || len(qs[1].Images) != 1 || qs[1].Mode != "frame" || qs[1].MaxTokens != 100 {
		t.Errorf("legacy: %q %d %s %d", qs[1].Text, len(qs[1].Images), qs[1].Mode, qs[1].MaxTokens)
	}
	if qs[2].Text != "Create a title for this text: a car is parked" || qs[2].Images != nil {
		t.Errorf("title: %q %d", qs[2].Text, len(qs[2].Images))
	}
}

func dataURL(t *testing.T, mime string, data []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data)
}

func TestHTTPChatImageFormats(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, solid(20, 10, "blue"))
	jpg := jpegBytes(t, 30, 20, "red")
	// Wrapped base64 (some clients break lines), no padding, no media type.
	wrapped := base64.StdEncoding.EncodeToString(jpg)
	wrapped = wrapped[:40] + "\n" + wrapped[40:]
	raw := strings.TrimRight(base64.StdEncoding.EncodeToString(pngBuf.Bytes()), "=")
	body := fmt.Sprintf(`{"messages":[{"role":"user","content":[
		{"type":"image_url","image_url":{"url":%q}},
		{"type":"image_url","image_url":%q},
		{"type":"image_url","image_url":{"url":%q}}]}]}`,
		dataURL(t, "image/png", pngBuf.Bytes()), "data:image/jpg;base64,"+wrapped, "data:;base64,"+raw)
	resp, data := ts.post(t, "/v1/chat/completions", body)
	r := decodeReply(t, resp, data)
	// No text at all: the image is captioned.
	if got, want := r.Choices[0].Message.Content, "caption en about 20x10 blue, 30x20 red, 20x10 blue"; got != want {
		t.Errorf("answer %q, want %q", got, want)
	}
}

func TestHTTPChatErrors(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	img := jpegB64(t, 8, 8, "red")
	imgPart := fmt.Sprintf(`{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s"}}`, img)
	many := strings.TrimSuffix(strings.Repeat(imgPart+",", 17), ",")
	huge := image.NewGray(image.Rect(0, 0, 9000, 1))
	var hugePNG bytes.Buffer
	png.Encode(&hugePNG, huge)

	for _, c := range []struct {
		name, body, param, code, msg string
	}{
		{"empty body", ``, "", "", "empty"},
		{"not json", `{"messages": [`, "", "", "not valid JSON"},
		{"two values", `{"messages":[{"role":"user","content":"hi"}]} {}`, "", "", "more than one"},
		{"messages not array", `{"messages": "hi"}`, "messages", "", "array"},
		{"no messages", `{"model":"x","messages":[]}`, "messages", "", "messages is empty"},
		{"no user", `{"messages":[{"role":"system","content":"be nice"}]}`, "messages", "", "no user message"},
		{"bad role", `{"messages":[{"role":"robot","content":"hi"}]}`, "messages[0].role", "", `"robot"`},
		{"no role", `{"messages":[{"content":"hi"}]}`, "messages[0].role", "", "no role"},
		{"content number", `{"messages":[{"role":"user","content":42}]}`, "messages[0].content", "", "string or an array"},
		{"part type", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "messages[0].content[0].type", "", "input_audio"},
		{"part no type", `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`, "messages[0].content[0].type", "", "no type"},
		{"text without text", `{"messages":[{"role":"user","content":[{"type":"text"}]}]}`, "messages[0].content[0].text", "", "without text"},
		{"image_url missing", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, "messages[0].content[0].image_url", "", "missing"},
		{"no question", `{"messages":[{"role":"user","content":"   "}]}`, "messages[0].content", "", "ask a question"},
		{"http url", `{"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}]}`,
			"messages[0].content[1].image_url.url", "unsupported_image_url", "offline"},
		{"ftp url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.jpg"}}]}]}`,
			"messages[0].content[0].image_url.url", "unsupported_image_url", `"ftp"`},
		{"webp", fmt.Sprintf(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/webp;base64,%s"}}]}]}`, img),
			"messages[0].content[0].image_url.url", "invalid_image_format", "image/webp"},
		{"not base64 url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg,abc"}}]}]}`,
			"messages[0].content[0].image_url.url", "", "not base64"},
		{"corrupt base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,@@@@"}}]}]}`,
			"messages[0].content[0].image_url.url", "invalid_image", "base64"},
		{"not an image", fmt.Sprintf(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s"}}]}]}`,
			base64.StdEncoding.EncodeToString([]byte("hello, this is text"))), "messages[0].content[0].image_url.url", "invalid_image", "not a readable"},
		{"truncated jpeg", fmt.Sprintf(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s"}}]}]}`,
			base64.StdEncoding.EncodeToString(noisyJPEG(t)[:3000])), "messages[0].content[0].image_url.url", "invalid_image", "corrupt"},
		{"too wide", fmt.Sprintf(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":%q}}]}]}`,
			dataURL(t, "image/png", hugePNG.Bytes())), "messages[0].content[0].image_url.url", "invalid_image", "9000x1"},
		{"17 images", `{"messages":[{"role":"user","content":[` + many + `]}]}`, "messages", "", "17 images"},
		{"n", `{"n":3,"messages":[{"role":"user","content":"hi"}]}`, "n", "", "n must be 1"},
		{"max_tokens 0", `{"max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens", "", "at least 1"},
		{"max_tokens string", `{"max_tokens":"ten","messages":[{"role":"user","content":"hi"}]}`, "max_tokens", "", "want a number"},
		{"max_completion_tokens", `{"max_completion_tokens":-5,"messages":[{"role":"user","content":"hi"}]}`, "max_completion_tokens", "", "-5"},
		{"stream_options alone", `{"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, "stream_options", "", "stream is true"},
		{"palid mode", `{"palid":{"mode":"movie"},"messages":[{"role":"user","content":"hi"}]}`, "palid.mode", "", "movie"},
		{"palid frames", `{"palid":{"frames":40},"messages":[{"role":"user","content":"hi"}]}`, "palid.frames", "", "40"},
		{"palid lang", `{"palid":{"lang":"e n"},"messages":[{"role":"user","content":"hi"}]}`, "palid.lang", "", "language"},
		{"palid frame with images", fmt.Sprintf(`{"palid":{"mode":"frame"},"messages":[{"role":"user","content":[%s,%s]}]}`, imgPart, imgPart),
			"palid.mode", "", "2 images"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.post(t, "/v1/chat/completions", c.body)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			msg, typ, param, code := openAIError(t, body)
			if typ != "invalid_request_error" || str(param) != orNil(c.param) || str(code) != orNil(c.code) || !strings.Contains(msg, c.msg) {
				t.Errorf("got type %s param %s code %s message %q; want param %s code %s message with %q",
					typ, str(param), str(code), msg, orNil(c.param), orNil(c.code), c.msg)
			}
		})
	}
	if n := len(ts.asker.questions()); n != 0 {
		t.Errorf("%d bad requests reached the asker", n)
	}
}

func orNil(s string) string {
	if s == "" {
		return "<nil>"
	}
	return s
}

func TestHTTPAskerErrors(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	for _, c := range []struct {
		err    error
		status int
		typ    string
		code   string
	}{
		{ErrBusy, 429, "rate_limit_error", "busy"},
		{fmt.Errorf("queued: %w", ErrTimeout), 504, "timeout_error", "timeout"},
		{context.DeadlineExceeded, 504, "timeout_error", "timeout"},
		{errors.New("camera lost"), 500, "server_error", "internal_error"},
	} {
		ts.asker.mu.Lock()
		ts.asker.err = c.err
		ts.asker.mu.Unlock()
		for _, stream := range []bool{false, true} {
			resp, body := ts.post(t, "/v1/chat/completions", fmt.Sprintf(`{"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, stream))
			msg, typ, _, code := openAIError(t, body)
			if resp.StatusCode != c.status || typ != c.typ || str(code) != c.code {
				t.Errorf("%v (stream %v): %d %s", c.err, stream, resp.StatusCode, body)
			}
			if c.status == 500 && !strings.Contains(msg, "camera lost") {
				t.Errorf("500 message %q hides the cause", msg)
			}
		}
	}
	// The recent list shows the failures too.
	if rec := ts.recent.List(); len(rec) != 8 || rec[0].Error == "" || rec[0].Answer != "" {
		t.Errorf("recent: %+v", rec)
	}
}

// sseEvents reads server-sent events' data lines until EOF.
func sseEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	blank := true
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			blank = true
			continue
		}
		if !blank {
			t.Fatalf("event with more than one line: %q", l)
		}
		blank = false
		d, ok := strings.CutPrefix(l, "data: ")
		if !ok {
			t.Fatalf("not a data line: %q", l)
		}
		out = append(out, d)
	}
	return out
}

type chunkReply struct {
	ID      string
	Object  string
	Model   string
	Choices []struct {
		Delta struct {
			Role    string
			Content *string
		}
		FinishReason *string `json:"finish_reason"`
	}
	Usage *struct {
		CompletionTokens int `json:"completion_tokens"`
	}
	Palid *struct{ Frames int }
}

func TestHTTPChatStream(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	ts.asker.gate = make(chan struct{})
	ts.asker.first = make(chan struct{})
	body := fmt.Sprintf(`{"model":"pali3-demo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[
		{"type":"text","text":"Which way did the car go?"},
		{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s"}}]}]}`, jpegB64(t, 16, 16, "red"))
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The first word arrives while the asker is still held at its gate:
	// tokens are streamed, not sent at the end.
	br := bufio.NewReader(resp.Body)
	var early []string
	for len(early) < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the first events: %v", err)
		}
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
			early = append(early, d)
		}
	}
	select {
	case <-ts.asker.first:
	default:
		t.Fatal("events before the asker produced a token")
	}
	close(ts.asker.gate)
	events := append(early, sseEvents(t, br)...)

	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events[len(events)-1])
	}
	var text strings.Builder
	var id string
	var finish string
	var usage, frames int
	for i, e := range events[:len(events)-1] {
		var c chunkReply
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, e)
		}
		if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Model != "pali3-demo" {
			t.Fatalf("event %d not a chunk: %s", i, e)
		}
		if id == "" {
			id = c.ID
		} else if c.ID != id {
			t.Errorf("chunk ids differ: %s, %s", id, c.ID)
		}
		if i == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
			t.Errorf("first chunk has no assistant role: %s", e)
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 || i != len(events)-2 {
				t.Errorf("usage chunk wrong or not last: %s", e)
			}
			usage = c.Usage.CompletionTokens
			continue
		}
		if finish != "" {
			t.Errorf("chunk after finish_reason: %s", e)
		}
		if ch := c.Choices[0]; ch.Delta.Content != nil {
			text.WriteString(*ch.Delta.Content)
		}
		if fr := c.Choices[0].FinishReason; fr != nil {
			finish = *fr
			if c.Palid != nil {
				frames = c.Palid.Frames
			}
		}
	}
	if want := "which way did the car go? about 16x16 red"; text.String() != want {
		t.Errorf("streamed %q, want %q", text.String(), want)
	}
	if finish != "stop" || usage != 9 || frames != 1 {
		t.Errorf("finish %q usage %d frames %d", finish, usage, frames)
	}
	if len(events) < 10 {
		t.Errorf("only %d events: the answer was not streamed piece by piece", len(events))
	}
}

// silentAsker answers without calling OnToken.
type silentAsker struct{}

func (silentAsker) Ask(ctx context.Context, q Question) (Answer, error) {
	return Answer{Text: "a red car", Tokens: 3, Mode: "frame", Frames: 1}, nil
}

func TestHTTPChatStreamWithoutTokens(t *testing.T) {
	srv := NewHTTPServer(HTTPOptions{}, HTTPDeps{Asker: silentAsker{}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"what is there?"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := sseEvents(t, resp.Body)
	var text strings.Builder
	for _, e := range events[:len(events)-1] {
		var c chunkReply
		json.Unmarshal([]byte(e), &c)
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil {
			text.WriteString(*c.Choices[0].Delta.Content)
		}
		if c.Model != "palid" {
			t.Errorf("model %q without an overview", c.Model)
		}
	}
	if text.String() != "a red car" || events[len(events)-1] != "[DONE]" {
		t.Errorf("streamed %q, events %q", text.String(), events)
	}
}

func TestHTTPToken(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{Token: "s3cret"})
	for _, p := range []string{"/v1/models", "/metrics", "/snapshot.jpg", "/v1/overview"} {
		for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}, {"Authorization", "Basic czNjcmV0"}} {
			resp, body := ts.get(t, p, h...)
			_, _, _, code := openAIError(t, body)
			if resp.StatusCode != 401 || str(code) != "invalid_api_key" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with %v: %d %s", p, h, resp.StatusCode, body)
			}
		}
		if resp, body := ts.get(t, p, "Authorization", "bearer s3cret"); resp.StatusCode != 200 {
			t.Errorf("%s with the token: %d %s", p, resp.StatusCode, body)
		}
	}
	resp, body := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 401 || len(ts.asker.questions()) != 0 {
		t.Errorf("chat without token: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/healthz", "/", "/app.js"} {
		if resp, _ := ts.get(t, p); resp.StatusCode != 200 {
			t.Errorf("%s needs no token, got %d", p, resp.StatusCode)
		}
	}
	resp, body = ts.get(t, "/v1/overview", "Authorization", "Bearer s3cret")
	if !strings.Contains(string(body), `"auth":true`) {
		t.Errorf("overview does not tell the page a token is needed: %s", body)
	}
}

func TestHTTPBodyLimit(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{MaxBodyBytes: 4096})
	big := fmt.Sprintf(`{"messages":[{"role":"user","content":%q}]}`, strings.Repeat("x", 5000))

	// Declared too large: refused from the headers alone. The body is never
	// sent; if the server tried to read it, this would hang until timeout.
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if _, _, _, code := openAIError(t, data); resp.StatusCode != 413 || str(code) != "request_too_large" {
		t.Errorf("declared 100 MB: %d %s", resp.StatusCode, data)
	}

	// Chunked, so no Content-Length: cut off by the MaxBytesReader.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/chat/completions", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp2, body := do(t, req)
	if _, _, _, code := openAIError(t, body); resp2.StatusCode != 413 || str(code) != "request_too_large" {
		t.Errorf("chunked 5 kB: %d %s", resp2.StatusCode, body)
	}
	// Within the limit it works.
	if resp, body := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
		t.Errorf("small body: %d %s", resp.StatusCode, body)
	}
	if n := len(ts.asker.questions()); n != 1 {
		t.Errorf("%d questions reached the asker, want 1", n)
	}
}

func TestHTTPSnapshot(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	resp, body := ts.get(t, "/snapshot.jpg")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("snapshot: %d %v", resp.StatusCode, resp.Header)
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil || img.Bounds().Dx() != 64 || dominant(img) != "green" {
		t.Fatalf("snapshot is not the frame: %v", err)
	}
	if at := resp.Header.Get("X-Captured-At"); at != "2025-01-02T03:04:05.0000006Z" {
		t.Errorf("X-Captured-At %q", at)
	}

	none := NewHTTPServer(HTTPOptions{}, HTTPDeps{Snapshot: func() ([]byte, time.Time, bool) { return nil, time.Time{}, false }})
	rec := httptest.NewRecorder()
	none.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/snapshot.jpg", nil))
	if _, _, _, code := openAIError(t, rec.Body.Bytes()); rec.Code != 503 || str(code) != "no_frame" {
		t.Errorf("no frame: %d %s", rec.Code, rec.Body)
	}
}

func TestHTTPMetricsEndpoint(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	ts.post(t, "/v1/chat/completions", `{"messages":[]}`)
	ts.get(t, "/nope")
	resp, body := ts.get(t, "/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %v", resp.StatusCode, resp.Header)
	}
	fams := parseExposition(t, string(body))
	h := fams["palid_http_requests_total"]
	if h == nil || sampleValue(t, h, map[string]string{"handler": "chat", "code": "200"}) != 1 ||
		sampleValue(t, h, map[string]string{"handler": "chat", "code": "400"}) != 1 ||
		sampleValue(t, h, map[string]string{"handler": "notfound", "code": "404"}) != 1 {
		t.Errorf("http requests not counted:\n%s", body)
	}
}

func TestHTTPStatusPageFiles(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	for path, want := range map[string]string{"/": "text/html", "/app.js": "text/javascript", "/style.css": "text/css"} {
		resp, body := ts.get(t, path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || len(body) < 100 {
			t.Errorf("%s: %d %q %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		// Nothing is loaded from elsewhere: the page works on an offline LAN.
		if bytes.Contains(body, []byte("http://")) || bytes.Contains(body, []byte("https://")) || bytes.Contains(body, []byte("//cdn")) {
			t.Errorf("%s refers to an external resource", path)
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s has no CSP", path)
		}
	}
	_, page := ts.get(t, "/")
	for _, id := range []string{`id="frame"`, `id="question"`, `id="send"`, `id="answer"`, `id="recent"`, `id="backend"`, `id="kernels"`} {
		if !bytes.Contains(page, []byte(id)) {
			t.Errorf("page lacks %s", id)
		}
	}
	if resp, _ := ts.get(t, "/index.html"); resp.StatusCode != 404 {
		t.Errorf("/index.html: %d", resp.StatusCode)
	}
}

func TestHTTPOverview(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{Version: "v9"})
	ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"Is it raining?"}]}`)
	_, body := ts.get(t, "/v1/overview")
	var ov Overview
	if err := json.Unmarshal(body, &ov); err != nil {
		t.Fatal(err)
	}
	if ov.Version != "v9" || ov.Backend != "cpu" || len(ov.Kernels) != 2 || ov.Camera.State != "ok" || ov.Auth ||
		len(ov.Recent) != 1 || ov.Recent[0].Question != "Is it raining?" || ov.Recent[0].Source != "http" || ov.Recent[0].LatencyMS < 40 {
		t.Errorf("overview %s", body)
	}
}

func TestRecentAnswers(t *testing.T) {
	r := NewRecentAnswers(3)
	for i := range 5 {
		r.Add(Question{Text: fmt.Sprint("q", i), Source: "mqtt"}, Answer{Text: fmt.Sprint("a", i), Latency: time.Duration(i) * time.Millisecond}, nil)
	}
	l := r.List()
	if len(l) != 3 || l[0].Question != "q4" || l[2].Question != "q2" || l[0].LatencyMS != 4 {
		t.Errorf("list %+v", l)
	}
	var zero RecentAnswers
	zero.Add(Question{Text: "x"}, Answer{}, ErrBusy)
	if l := zero.List(); len(l) != 1 || l[0].Error != ErrBusy.Error() {
		t.Errorf("zero value: %+v", l)
	}
}

func TestHTTPServeShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(HTTPOptions{}, HTTPDeps{Asker: &fakeAsker{}, Overview: testOverview})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still open after Serve returned")
	}
}

// TestHTTPAskContextCanceled checks that a client going away cancels its
// question.
func TestHTTPAskContextCanceled(t *testing.T) {
	ts := newTestServer(t, HTTPOptions{})
	ts.asker.gate = make(chan struct{}) // never opened
	ts.asker.first = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/chat/completions",
		strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-ts.asker.first
	cancel()
	<-errc
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := ts.recent.List()
		if len(rec) == 1 {
			if !strings.Contains(rec[0].Error, "canceled") {
				t.Errorf("recent %+v", rec[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the question was not canceled with its request")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

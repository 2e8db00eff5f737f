package daemon

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image_url data URLs may carry GIF
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxHTTPImages is the most images one chat completion may carry: a video
// window is at most 16 frames.
const MaxHTTPImages = 16

// Limits on one image inside a request: decoded size and pixel count, so
// that a small PNG cannot expand into gigabytes.
const (
	maxImageSide   = 8192
	maxImagePixels = 40 << 20
)

// defaultImagePrompt is asked about images that come without any text.
const defaultImagePrompt = "caption en"

// chatRequest is the part of an OpenAI chat completion request palid reads;
// other fields (temperature, top_p, response_format, tools, ...) are
// accepted and ignored: palid decodes greedily and answers in plain text.
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Stream              *bool          `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	N                   *int           `json:"n"`
	Palid               *chatExtension `json:"palid"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// chatExtension holds palid's own request options, under "palid".
type chatExtension struct {
	Mode     string  `json:"mode"`      // "frame" or "video" (camera questions)
	Frames   int     `json:"frames"`    // video window size, <= 16
	Stride   int     `json:"stride"`    // video window stride
	Lang     string  `json:"lang"`      // answer language, default en
	TimeoutS float64 `json:"timeout_s"` // deadline budget
}

// chatQuery is a parsed, checked chat completion request.
type chatQuery struct {
	Model        string
	Text         string
	Images       []image.Image
	MaxTokens    int
	Stream       bool
	IncludeUsage bool
	Mode         string
	Frames       int
	Stride       int
	Lang         string
	Timeout      time.Duration
}

// chatPart is one content part, after parsing.
type chatPart struct {
	text    string
	isImage bool
	url     string
	param   string // where it came from, for errors
}

// parseChatRequest reads and checks a request body. Every error is an
// OpenAI-shaped 400 naming the offending parameter.
func parseChatRequest(data []byte) (chatQuery, *apiError) {
	var req chatRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&req); err != nil {
		return chatQuery{}, jsonError(err)
	}
	if dec.More() {
		return chatQuery{}, invalid("", "the request body holds more than one JSON value")
	}
	q := chatQuery{Model: req.Model, Stream: req.Stream != nil && *req.Stream, Mode: "frame"}
	if req.StreamOptions != nil {
		if !q.Stream {
			return q, invalid("stream_options", "stream_options is only allowed when stream is true")
		}
		q.IncludeUsage = req.StreamOptions.IncludeUsage
	}
	if req.N != nil && *req.N != 1 {
		return q, invalid("n", "n is %d: palid gives exactly one answer (n must be 1)", *req.N)
	}
	switch {
	case req.MaxCompletionTokens != nil:
		if *req.MaxCompletionTokens < 1 {
			return q, invalid("max_completion_tokens", "max_completion_tokens is %d: it must be at least 1", *req.MaxCompletionTokens)
		}
		q.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		if *req.MaxTokens < 1 {
			return q, invalid("max_tokens", "max_tokens is %d: it must be at least 1", *req.MaxTokens)
		}
		q.MaxTokens = *req.MaxTokens
	}
	if len(req.Messages) == 0 {
		return q, invalid("messages", "messages is empty: send at least one user message")
	}

	lastUser := -1
	var userParts [][]chatPart
	var images []chatPart
	for i, m := range req.Messages {
		switch m.Role {
		case "user":
		case "system", "developer", "assistant", "tool", "function":
			// PaLI has no system prompt or dialogue: only what the user
			// asks last, and the images, matter.
			continue
		case "":
			return q, invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d] has no role", i)
		default:
			return q, invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d].role is %q: want system, developer, user, assistant or tool", i, m.Role)
		}
		parts, aerr := parseContent(m.Content, fmt.Sprintf("messages[%d].content", i))
		if aerr != nil {
			return q, aerr
		}
		lastUser = i
		userParts = append(userParts, parts)
		for _, p := range parts {
			if p.isImage {
				images = append(images, p)
			}
		}
	}
	if lastUser < 0 {
		return q, invalid("messages", "messages has no user message: the last user message is the question")
	}
	if len(images) > MaxHTTPImages {
		return q, invalid("messages", "the user messages carry %d images: at most %d (a video window)", len(images), MaxHTTPImages)
	}
	q.Text = questionText(userParts[len(userParts)-1])
	if q.Text == "" {
		if len(images) == 0 {
			return q, invalid(fmt.Sprintf("messages[%d].content", lastUser), "the last user message has no text and there is no image: ask a question")
		}
		q.Text = defaultImagePrompt
	}
	for n, p := range images {
		img, aerr := decodeDataURL(p.url, p.param, n+1)
		if aerr != nil {
			return q, aerr
		}
		q.Images = append(q.Images, img)
	}
	if len(q.Images) > 1 {
		q.Mode = "video"
	}
	if x := req.Palid; x != nil {
		switch x.Mode {
		case "":
		case "frame", "video":
			if len(q.Images) > 1 && x.Mode == "frame" {
				return q, invalid("palid.mode", "palid.mode is frame but the request carries %d images", len(q.Images))
			}
			if len(q.Images) <= 1 {
				q.Mode = x.Mode
			}
		default:
			return q, invalid("palid.mode", "palid.mode is %q: want frame or video", x.Mode)
		}
		if x.Frames < 0 || x.Frames > MaxHTTPImages {
			return q, invalid("palid.frames", "palid.frames is %d: want 1 to %d (0: the configured window)", x.Frames, MaxHTTPImages)
		}
		if x.Stride < 0 {
			return q, invalid("palid.stride", "palid.stride is %d: it must not be negative", x.Stride)
		}
		if x.TimeoutS < 0 || x.TimeoutS > 3600 {
			return q, invalid("palid.timeout_s", "palid.timeout_s is %g: want 0 to 3600 seconds", x.TimeoutS)
		}
		if x.Lang != "" && !validLang(x.Lang) {
			return q, invalid("palid.lang", "palid.lang is %q: want a language code such as en or de", x.Lang)
		}
		q.Frames, q.Stride, q.Lang = x.Frames, x.Stride, x.Lang
		q.Timeout = time.Duration(x.TimeoutS * float64(time.Second))
	}
	return q, nil
}

func validLang(s string) bool {
	if len(s) > 16 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func jsonError(err error) *apiError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return invalid(field, "%s is a JSON %s: want %s", field, te.Value, jsonKind(te.Type.Kind().String()))
	}
	if errors.Is(err, io.EOF) {
		return invalid("", "the request body is empty: send a JSON chat completion request")
	}
	return invalid("", "the request body is not valid JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return k
}

// parseContent reads a message's content: null, a string, or an array of
// parts (text parts, image_url parts, or bare strings as some clients send).
func parseContent(raw json.RawMessage, param string) ([]chatPart, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid(param, "%s is not a valid JSON string: %v", param, err)
		}
		return []chatPart{{text: s, param: param}}, nil
	case '[':
	default:
		return nil, invalid(param, "%s must be a string or an array of content parts", param)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid(param, "%s is not a valid array of content parts: %v", param, err)
	}
	parts := make([]chatPart, 0, len(items))
	for j, it := range items {
		pp := fmt.Sprintf("%s[%d]", param, j)
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '"' {
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, invalid(pp, "%s is not a valid JSON string: %v", pp, err)
			}
			parts = append(parts, chatPart{text: s, param: pp})
			continue
		}
		var p struct {
			Type     string          `json:"type"`
			Text     *string         `json:"text"`
			ImageURL json.RawMessage `json:"image_url"`
		}
		if len(it) == 0 || it[0] != '{' {
			return nil, invalid(pp, "%s must be a content part object such as {\"type\":\"text\",\"text\":\"...\"}", pp)
		}
		if err := json.Unmarshal(it, &p); err != nil {
			return nil, jsonError(err)
		}
		switch p.Type {
		case "text":
			if p.Text == nil {
				return nil, invalid(pp+".text", "%s is a text part without text", pp)
			}
			parts = append(parts, chatPart{text: *p.Text, param: pp})
		case "image_url":
			url, aerr := imageURLField(p.ImageURL, pp+".image_url")
			if aerr != nil {
				return nil, aerr
			}
			parts = append(parts, chatPart{isImage: true, url: url, param: pp + ".image_url.url"})
		case "":
			return nil, invalid(pp+".type", "%s has no type: want text or image_url", pp)
		default:
			return nil, invalid(pp+".type", "%s has type %q: palid takes text and image_url parts", pp, p.Type)
		}
	}
	return parts, nil
}

// imageURLField reads image_url: {"url": "...", "detail": ...} or a bare
// string.
func imageURLField(raw json.RawMessage, param string) (string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", invalid(param, "%s is missing", param)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", invalid(param, "%s is not a valid JSON string: %v", param, err)
		}
		return s, nil
	}
	var v struct {
		URL *string `json:"url"`
	}
	if raw[0] != '{' || json.Unmarshal(raw, &v) != nil || v.URL == nil {
		return "", invalid(param+".url", "%s must be an object with a url: {\"url\": \"data:image/jpeg;base64,...\"}", param)
	}
	return *v.URL, nil
}

// questionText is the question in the last user message: its text parts
// joined, leaving out the short labels some clients put before each image
// ("Image 1:"), unless the text is nothing but such labels.
func questionText(parts []chatPart) string {
	var all, kept []string
	for i, p := range parts {
		if p.isImage {
			continue
		}
		t := strings.TrimSpace(p.text)
		if t == "" {
			continue
		}
		all = append(all, t)
		label := i+1 < len(parts) && parts[i+1].isImage &&
			strings.HasSuffix(t, ":") && len(t) <= 64 && !strings.ContainsAny(t, "\n?")
		if !label {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		kept = all
	}
	return strings.Join(kept, " ")
}

// decodeDataURL decodes a data:image/...;base64 URL into an image. n is the
// image's number (from 1) for the error messages.
func decodeDataURL(url, param string, n int) (image.Image, *apiError) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return nil, invalid(param, "image %d: %q is not a URL: send data:image/jpeg;base64,...", n, clip(url, 40))
	}
	switch strings.ToLower(scheme) {
	case "data":
	case "http", "https":
		return nil, invalid(param, "image %d: palid works offline and does not fetch image URLs (%s); send the image inline as a data URL: data:image/jpeg;base64,...", n, clip(url, 80)).withCode("unsupported_image_url")
	default:
		return nil, invalid(param, "image %d: URL scheme %q is not supported: send data:image/jpeg;base64,...", n, scheme).withCode("unsupported_image_url")
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, invalid(param, "image %d: the data URL has no comma before its data", n)
	}
	mediaType, params, _ := strings.Cut(meta, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	if !strings.EqualFold(strings.TrimSpace(params), "base64") && !strings.HasSuffix(strings.ToLower(params), ";base64") {
		return nil, invalid(param, "image %d: the data URL is not base64 (want data:image/jpeg;base64,...)", n)
	}
	switch mediaType {
	case "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/gif", "":
	default:
		return nil, invalid(param, "image %d: media type %q is not supported: send JPEG or PNG", n, mediaType).withCode("invalid_image_format")
	}
	payload = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, payload)
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		data, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(payload, "="))
	}
	if err != nil {
		return nil, invalid(param, "image %d: the base64 data is corrupt: %v", n, err).withCode("invalid_image")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, invalid(param, "image %d: not a readable JPEG, PNG or GIF image (%d bytes): %v", n, len(data), err).withCode("invalid_image")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxImageSide || cfg.Height > maxImageSide || cfg.Width*cfg.Height > maxImagePixels {
		return nil, invalid(param, "image %d: %s of %dx%d pixels: at most %dx%d and %d megapixels", n, format, cfg.Width, cfg.Height, maxImageSide, maxImageSide, maxImagePixels>>20).withCode("invalid_image")
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, invalid(param, "image %d: the %s data is corrupt: %v", n, format, err).withCode("invalid_image")
	}
	return img, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// chatID returns a fresh completion id.
func chatID() string {
	var b [12]byte
	rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// question turns a parsed request into a Question for the Asker.
func (c chatQuery) question() Question {
	return Question{
		Text:      c.Text,
		Lang:      c.Lang,
		Mode:      c.Mode,
		Frames:    c.Frames,
		Stride:    c.Stride,
		MaxTokens: c.MaxTokens,
		Timeout:   c.Timeout,
		Images:    c.Images,
		Source:    "http",
	}
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// chatPalid is palid's own part of a response, under "palid".
type chatPalid struct {
	ID         string    `json:"id"`
	Question   string    `json:"question"`
	Prompt     string    `json:"prompt,omitempty"`
	Mode       string    `json:"mode"`
	Frames     int       `json:"frames"`
	CapturedAt time.Time `json:"captured_at,omitzero"`
	LatencyMS  float64   `json:"latency_ms"`
	QueueMS    float64   `json:"queue_ms"`
}

type chatMessageOut struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatChoice struct {
	Index        int            `json:"index"`
	Message      chatMessageOut `json:"message"`
	Logprobs     *struct{}      `json:"logprobs"`
	FinishReason string         `json:"finish_reason"`
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             chatUsage    `json:"usage"`
	Palid             chatPalid    `json:"palid"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        chatDelta `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	Usage             *chatUsage    `json:"usage,omitempty"`
	Palid             *chatPalid    `json:"palid,omitempty"`
}

func finishReason(q chatQuery, a Answer) string {
	if q.MaxTokens > 0 && a.Tokens >= q.MaxTokens {
		return "length"
	}
	return "stop"
}

func palidPart(a Answer) chatPalid {
	return chatPalid{ID: a.ID, Question: a.Question, Prompt: a.Prompt, Mode: a.Mode, Frames: a.Frames,
		CapturedAt: a.CapturedAt, LatencyMS: durationMS(a.Latency), QueueMS: durationMS(a.QueueTime)}
}

func (s *HTTPServer) modelName(a Answer) string {
	if a.Model != "" {
		return a.Model
	}
	return s.model().ID
}

func (s *HTTPServer) handleChat(w http.ResponseWriter, r *http.Request) {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		writeAPIError(w, (&apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
			Message: fmt.Sprintf("the request body is %d bytes: palid takes at most %d", r.ContentLength, limit)}).withCode("request_too_large"))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeAPIError(w, (&apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Message: fmt.Sprintf("the request body is over %d bytes, the most palid takes", limit)}).withCode("request_too_large"))
			return
		}
		writeAPIError(w, invalid("", "reading the request body: %v", err))
		return
	}
	cq, aerr := parseChatRequest(data)
	if aerr != nil {
		s.log.Info("http: bad chat request", "remote", r.RemoteAddr, "err", aerr.Message)
		writeAPIError(w, aerr)
		return
	}
	if s.deps.Asker == nil {
		writeAPIError(w, (&apiError{Status: http.StatusServiceUnavailable, Type: "server_error",
			Message: "palid is starting: no model to ask yet"}).withCode("unavailable"))
		return
	}
	id := chatID()
	if cq.Stream {
		s.streamChat(w, r, id, cq)
		return
	}
	a, err := s.deps.Asker.Ask(r.Context(), cq.question())
	if err != nil {
		e := apiErrorFor(err)
		s.log.Info("http: chat completion failed", "remote", r.RemoteAddr, "status", e.Status, "err", err)
		writeAPIError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, chatCompletion{
		ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: s.modelName(a),
		SystemFingerprint: "palid",
		Choices: []chatChoice{{Message: chatMessageOut{Role: "assistant", Content: a.Text},
			FinishReason: finishReason(cq, a)}},
		Usage: chatUsage{CompletionTokens: a.Tokens, TotalTokens: a.Tokens},
		Palid: palidPart(a),
	})
}

// tokenPipe carries OnToken pieces from the worker to the HTTP handler
// without ever blocking the worker.
type tokenPipe struct {
	mu     sync.Mutex
	pieces []string
	signal chan struct{}
}

func newTokenPipe() *tokenPipe { return &tokenPipe{signal: make(chan struct{}, 1)} }

func (p *tokenPipe) push(piece string) {
	p.mu.Lock()
	p.pieces = append(p.pieces, piece)
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *tokenPipe) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pieces
	p.pieces = nil
	return out
}

// streamChat answers with server-sent events: chat.completion.chunk
// objects as the answer grows, then data: [DONE]. Errors before the first
// chunk get their HTTP status as usual; later ones come as an error event.
func (s *HTTPServer) streamChat(w http.ResponseWriter, r *http.Request, id string, cq chatQuery) {
	pipe := newTokenPipe()
	q := cq.question()
	q.OnToken = pipe.push
	type result struct {
		a   Answer
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := s.deps.Asker.Ask(r.Context(), q)
		done <- result{a, err}
	}()

	rc := http.NewResponseController(w)
	created := time.Now().Unix()
	model := s.model().ID
	started := false
	var sent strings.Builder
	var werr error
	event := func(v any) {
		if werr != nil {
			return
		}
		data, err := json.Marshal(v)
		if err != nil {
			werr = err
			return
		}
		if _, werr = fmt.Fprintf(w, "data: %s\n\n", data); werr == nil {
			werr = rc.Flush()
		}
	}
	chunk := func(d chatDelta, finish *string) chatChunk {
		return chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			SystemFingerprint: "palid", Choices: []chunkChoice{{Delta: d, FinishReason: finish}}}
	}
	start := func() {
		if started {
			return
		}
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		empty := ""
		event(chunk(chatDelta{Role: "assistant", Content: &empty}, nil))
	}
	send := func(pieces []string) {
		for _, p := range pieces {
			if p == "" {
				continue
			}
			start()
			sent.WriteString(p)
			event(chunk(chatDelta{Content: &p}, nil))
		}
	}
	for {
		select {
		case <-pipe.signal:
			send(pipe.take())
		case res := <-done:
			send(pipe.take())
			if res.err != nil {
				e := apiErrorFor(res.err)
				s.log.Info("http: streamed chat completion failed", "remote", r.RemoteAddr, "status", e.Status, "err", res.err)
				if !started {
					writeAPIError(w, e)
					return
				}
				event(struct {
					Error *apiError `json:"error"`
				}{e})
				return
			}
			a := res.a
			model = s.modelName(a)
			if rest, ok := strings.CutPrefix(a.Text, sent.String()); ok && rest != "" {
				// The asker streamed less than the answer (or nothing).
				send([]string{rest})
			}
			start()
			fin := finishReason(cq, a)
			last := chunk(chatDelta{}, &fin)
			pp := palidPart(a)
			last.Palid = &pp
			event(last)
			if cq.IncludeUsage {
				u := chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
					SystemFingerprint: "palid", Choices: []chunkChoice{},
					Usage: &chatUsage{CompletionTokens: a.Tokens, TotalTokens: a.Tokens}}
				event(u)
			}
			if werr == nil {
				_, werr = io.WriteString(w, "data: [DONE]\n\n")
				if werr == nil {
					werr = rc.Flush()
				}
			}
			if werr != nil {
				s.log.Debug("http: writing stream", "err", werr)
			}
			return
		}
	}
}

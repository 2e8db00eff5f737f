package daemon

import (
	"context"
	"image"
	"time"
)

// Question is one question for the worker, from any trigger (MQTT, the
// interval, GPIO, HTTP).
type Question struct {
	// Text is the question as asked: plain words or a PaLI prompt
	// (runtime.BuildPrompt turns the first into the second).
	Text string
	// Lang is the answer language for plain-word questions (default "en").
	Lang string
	// Mode is "frame" (the newest frame) or "video" (a window of frames).
	Mode string
	// Frames and Stride choose the video window (0: the configured default).
	Frames, Stride int
	// MaxTokens bounds the answer (0: the configured default).
	MaxTokens int
	// Timeout is the deadline budget from now (0: the configured default).
	Timeout time.Duration
	// Images, when set, are answered about instead of the camera's frames
	// (HTTP requests that carry their own image).
	Images []image.Image
	// Source names the trigger: "mqtt", "interval", "gpio", "http".
	Source string
	// Snapshot asks for the analysed frame (a contact sheet for a window)
	// to be published.
	Snapshot bool
	// OnToken, when set, receives the answer's text as it grows, one
	// decoded piece at a time (HTTP streaming). It must not block.
	OnToken func(piece string)
}

// Answer is the worker's result for a Question.
type Answer struct {
	ID         string        // unique id of this answer ("q-<n>")
	Question   string        // the question as asked
	Prompt     string        // the PaLI prompt the model saw
	Text       string        // the answer
	Tokens     int           // generated tokens
	Mode       string        // "frame" or "video"
	Frames     int           // frames actually used
	CapturedAt time.Time     // capture time of the newest frame used
	Model      string        // model name
	Latency    time.Duration // from arrival to answer
	QueueTime  time.Duration // time spent waiting in the queue
	Source     string
	// Snapshot is the JPEG of the analysed frame(s), when asked for.
	Snapshot []byte
}

// Asker answers questions; the daemon implements it over its queue, and
// the HTTP API and triggers use it.
type Asker interface {
	// Ask queues q and waits for its answer or ctx's end. A full queue
	// gives ErrBusy at once; an expired deadline ErrTimeout.
	Ask(ctx context.Context, q Question) (Answer, error)
}

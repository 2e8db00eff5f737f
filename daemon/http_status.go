package daemon

import (
	"embed"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// Overview describes the running daemon for the status page (served as
// JSON on /v1/overview) and names the model for /v1/models.
type Overview struct {
	Version string `json:"version,omitempty"`
	// Model is the model's name, as /v1/models and the answers report it.
	Model string `json:"model"`
	// Backend is "cpu" or the NPU delegate in use.
	Backend string `json:"backend"`
	// Kernels are the compute kernels dispatch chose (neon.Kernels()).
	Kernels []string     `json:"kernels"`
	Camera  CameraStatus `json:"camera"`
	// State is the worker's state: warming, idle, busy or error.
	State string `json:"state,omitempty"`
	// Queue is the number of questions waiting; QueueMax the capacity.
	Queue    int `json:"queue"`
	QueueMax int `json:"queue_max"`
	// Recent are the latest questions and answers, newest first.
	Recent []RecentAnswer `json:"recent"`
	// Auth reports whether the API wants a bearer token (set by the server).
	Auth bool `json:"auth"`
}

// CameraStatus is the camera part of an Overview.
type CameraStatus struct {
	// State is "ok" or "lost".
	State string `json:"state"`
	// Source is the frame source spec (v4l2:/dev/video0, synthetic:1, ...).
	Source string `json:"source,omitempty"`
	// LastFrame is the capture time of the newest frame.
	LastFrame time.Time `json:"last_frame,omitzero"`
	// Width and Height are the newest frame's size.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// RecentAnswer is one question and its outcome, for the status page.
type RecentAnswer struct {
	ID        string    `json:"id,omitempty"`
	Source    string    `json:"source"`
	Question  string    `json:"question"`
	Answer    string    `json:"answer,omitempty"`
	Error     string    `json:"error,omitempty"`
	Mode      string    `json:"mode,omitempty"`
	Frames    int       `json:"frames,omitempty"`
	At        time.Time `json:"at"`
	LatencyMS float64   `json:"latency_ms"`
	QueueMS   float64   `json:"queue_ms"`
}

// RecentAnswers keeps the latest answers for Overview.Recent. It is safe
// for concurrent use; the zero value keeps DefaultRecentAnswers entries.
type RecentAnswers struct {
	mu    sync.Mutex
	max   int
	items []RecentAnswer // oldest first
}

// DefaultRecentAnswers is how many answers a zero RecentAnswers keeps.
const DefaultRecentAnswers = 20

// NewRecentAnswers returns a list keeping the latest max answers.
func NewRecentAnswers(max int) *RecentAnswers {
	return &RecentAnswers{max: max}
}

// Add records q's outcome: a's text on success, err's message otherwise.
func (r *RecentAnswers) Add(q Question, a Answer, err error) {
	ra := RecentAnswer{
		ID:        a.ID,
		Source:    q.Source,
		Question:  q.Text,
		Answer:    a.Text,
		Mode:      a.Mode,
		Frames:    a.Frames,
		At:        time.Now(),
		LatencyMS: durationMS(a.Latency),
		QueueMS:   durationMS(a.QueueTime),
	}
	if ra.Mode == "" {
		ra.Mode = q.Mode
	}
	if err != nil {
		ra.Answer = ""
		ra.Error = err.Error()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	max := r.max
	if max <= 0 {
		max = DefaultRecentAnswers
	}
	r.items = append(r.items, ra)
	if n := len(r.items); n > max {
		r.items = append(r.items[:0], r.items[n-max:]...)
	}
}

// List returns the recorded answers, newest first.
func (r *RecentAnswers) List() []RecentAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecentAnswer, len(r.items))
	for i, it := range r.items {
		out[len(out)-1-i] = it
	}
	return out
}

func durationMS(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

//go:embed web
var webFiles embed.FS

// handlePage serves the status page's three files from the binary.
func (s *HTTPServer) handlePage(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	data, err := webFiles.ReadFile(path.Join("web", name))
	if err != nil {
		s.handleNotFound(w, r)
		return
	}
	ct := "text/html; charset=utf-8"
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache")
	// The page loads nothing from elsewhere; say so to the browser.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.Write(data)
}

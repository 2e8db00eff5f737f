package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBodyBytes bounds a request body when HTTPOptions.MaxBodyBytes is
// zero: 16 JPEG frames in base64 fit with room to spare.
const DefaultMaxBodyBytes = 20 << 20

// HTTPOptions configures the local HTTP API.
type HTTPOptions struct {
	// Token, when set, must be sent as "Authorization: Bearer <token>" on
	// every endpoint but /healthz and the status page itself (whose
	// script asks for the token and sends it).
	Token string
	// MaxBodyBytes bounds request bodies (0: DefaultMaxBodyBytes). Larger
	// bodies are refused with 413 before they are read.
	MaxBodyBytes int64
	// Version is reported by /healthz and the status page.
	Version string
	// Logger receives one line per failed request (nil: slog.Default()).
	Logger *slog.Logger
}

// HTTPDeps are what the HTTP API serves from; the daemon provides them.
type HTTPDeps struct {
	// Asker answers chat completions (the daemon's queue).
	Asker Asker
	// Snapshot returns the camera's newest frame as JPEG and its capture
	// time; ok is false when there is no frame yet.
	Snapshot func() (jpeg []byte, at time.Time, ok bool)
	// Overview describes the daemon for the status page, /v1/models and
	// /healthz.
	Overview func() Overview
	// Metrics is served on /metrics and counts HTTP requests (may be nil).
	Metrics *Metrics
}

// HTTPServer is palid's local HTTP API: an OpenAI-compatible chat
// completions endpoint, Prometheus metrics, the newest frame and a status
// page.
type HTTPServer struct {
	opts    HTTPOptions
	deps    HTTPDeps
	log     *slog.Logger
	handler http.Handler
	started time.Time
}

// NewHTTPServer returns a server for cfg and deps; call Serve to run it.
func NewHTTPServer(cfg HTTPOptions, deps HTTPDeps) *HTTPServer {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &HTTPServer{opts: cfg, deps: deps, log: cfg.Logger, started: time.Now()}
	if s.log == nil {
		s.log = slog.Default()
	}
	mux := http.NewServeMux()
	// Methods are checked here rather than by the mux so that a wrong one
	// gets an OpenAI-shaped 405 too.
	route := func(method, pattern, name string, auth bool, h http.HandlerFunc) {
		mux.Handle(pattern, s.wrap(method, name, auth, h))
	}
	route("GET", "/healthz", "healthz", false, s.handleHealthz)
	route("GET", "/metrics", "metrics", true, s.handleMetrics)
	route("GET", "/snapshot.jpg", "snapshot", true, s.handleSnapshot)
	route("GET", "/v1/models", "models", true, s.handleModels)
	route("GET", "/models", "models", true, s.handleModels)
	route("GET", "/v1/models/{id}", "model", true, s.handleModel)
	route("POST", "/v1/chat/completions", "chat", true, s.handleChat)
	route("POST", "/chat/completions", "chat", true, s.handleChat)
	route("GET", "/v1/overview", "overview", true, s.handleOverview)
	route("GET", "/{$}", "page", false, s.handlePage)
	route("GET", "/app.js", "page", false, s.handlePage)
	route("GET", "/style.css", "page", false, s.handlePage)
	route("", "/", "notfound", false, s.handleNotFound)
	s.handler = mux
	return s
}

// Handler returns the API as an http.Handler (Serve uses it).
func (s *HTTPServer) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until ctx ends, then shuts down gracefully
// (streams in flight get five seconds) and returns nil. ln is closed.
func (s *HTTPServer) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// statusRecorder remembers the status code written, for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// wrap adds the bearer-token check, the request counter and the common
// headers.
func (s *HTTPServer) wrap(method, name string, auth bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		rec.Header().Set("X-Content-Type-Options", "nosniff")
		allowed := method == "" || r.Method == method || method == http.MethodGet && r.Method == http.MethodHead
		if !allowed {
			allow := method
			if method == http.MethodGet {
				allow = "GET, HEAD"
			}
			rec.Header().Set("Allow", allow)
			writeAPIError(rec, (&apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
				Message: fmt.Sprintf("%s %s is not allowed: use %s", r.Method, r.URL.Path, method)}).withCode("method_not_allowed"))
		} else if auth && !s.authorized(r) {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="palid"`)
			writeAPIError(rec, (&apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error",
				Message: "missing or wrong bearer token: send the token configured as http.token in an \"Authorization: Bearer ...\" header"}).withCode("invalid_api_key"))
		} else {
			h(rec, r)
		}
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		if s.deps.Metrics != nil {
			s.deps.Metrics.ObserveHTTP(name, rec.code)
		}
	})
}

func (s *HTTPServer) authorized(r *http.Request) bool {
	if s.opts.Token == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(h[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) == 1
}

func (s *HTTPServer) overview() Overview {
	if s.deps.Overview == nil {
		return Overview{}
	}
	return s.deps.Overview()
}

// apiError is an OpenAI-shaped error: {"error": {message, type, param, code}}.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

// invalid is a 400 invalid_request_error about param.
func invalid(param, format string, args ...any) *apiError {
	e := &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	return e
}

func (e *apiError) withCode(code string) *apiError {
	e.Code = &code
	return e
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	body := struct {
		Error *apiError `json:"error"`
	}{e}
	// Code is written as null when unset: OpenAI clients expect the key.
	writeJSON(w, e.Status, body)
}

// apiErrorFor maps an Asker error to an HTTP status and OpenAI error.
func apiErrorFor(err error) *apiError {
	switch {
	case errors.Is(err, ErrBusy):
		return (&apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error",
			Message: "palid is busy: its question queue is full, try again shortly"}).withCode("busy")
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return (&apiError{Status: http.StatusGatewayTimeout, Type: "timeout_error",
			Message: "the question's deadline passed before palid could answer it"}).withCode("timeout")
	case errors.Is(err, context.Canceled):
		// The client went away: nobody reads this, but the status is logged.
		return (&apiError{Status: 499, Type: "server_error", Message: "request canceled"}).withCode("canceled")
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return (&apiError{Status: http.StatusInternalServerError, Type: "server_error",
		Message: "palid could not answer: " + err.Error()}).withCode("internal_error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"message":"cannot encode the response","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

func (s *HTTPServer) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeAPIError(w, (&apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
		Message: fmt.Sprintf("unknown endpoint %s %s: palid serves /v1/chat/completions, /v1/models, /metrics, /snapshot.jpg, /healthz and /", r.Method, r.URL.Path)}).withCode("unknown_url"))
}

func (s *HTTPServer) handleHealthz(w http.ResponseWriter, r *http.Request) {
	ov := s.overview()
	writeJSON(w, http.StatusOK, map[string]any{
		"status":   "ok",
		"version":  s.opts.Version,
		"model":    ov.Model,
		"camera":   ov.Camera.State,
		"uptime_s": int64(time.Since(s.started).Seconds()),
	})
}

func (s *HTTPServer) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.deps.Metrics == nil {
		writeAPIError(w, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: "metrics are not enabled"})
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if _, err := s.deps.Metrics.WriteTo(w); err != nil {
		s.log.Debug("http: writing metrics", "err", err)
	}
}

func (s *HTTPServer) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	var (
		jpg []byte
		at  time.Time
		ok  bool
	)
	if s.deps.Snapshot != nil {
		jpg, at, ok = s.deps.Snapshot()
	}
	if !ok || len(jpg) == 0 {
		writeAPIError(w, (&apiError{Status: http.StatusServiceUnavailable, Type: "server_error",
			Message: "no camera frame yet"}).withCode("no_frame"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(jpg)))
	if !at.IsZero() {
		h.Set("Last-Modified", at.UTC().Format(http.TimeFormat))
		h.Set("X-Captured-At", at.UTC().Format(time.RFC3339Nano))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(jpg)
	}
}

// modelObject is an entry of /v1/models.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *HTTPServer) model() modelObject {
	name := s.overview().Model
	if name == "" {
		name = "palid"
	}
	return modelObject{ID: name, Object: "model", Created: s.started.Unix(), OwnedBy: "palid"}
}

func (s *HTTPServer) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.model()}})
}

func (s *HTTPServer) handleModel(w http.ResponseWriter, r *http.Request) {
	m := s.model()
	if id := r.PathValue("id"); id != m.ID {
		writeAPIError(w, (&apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("the model %q does not exist: this palid serves %q", id, m.ID)}).withCode("model_not_found"))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *HTTPServer) handleOverview(w http.ResponseWriter, r *http.Request) {
	ov := s.overview()
	if ov.Version == "" {
		ov.Version = s.opts.Version
	}
	ov.Auth = s.opts.Token != ""
	if ov.Recent == nil {
		ov.Recent = []RecentAnswer{}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ov)
}

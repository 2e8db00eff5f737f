package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Metrics holds the daemon's Prometheus metrics and writes them in the
// text exposition format (version 0.0.4). It is safe for concurrent use; the
// zero value is not, use NewMetrics.
//
// The daemon calls ObserveAnswer once for every query it finishes or refuses,
// whatever its source; the HTTP server never does (it counts HTTP requests
// only), so no query is counted twice.
type Metrics struct {
	mu sync.Mutex

	model, backend string

	queries      map[[2]string]uint64 // {source, outcome}
	latency      histogram            // arrival to answer, ok answers
	queueWait    histogram            // time in the queue, ok answers
	tokens       uint64               // generated tokens, all answers
	tokensPerSec float64              // of the latest answer
	queueDepth   int
	framesOK     uint64
	framesDrop   uint64
	httpRequests map[[2]string]uint64 // {handler, code}
}

// latencyBuckets are the upper bounds, in seconds, of the latency histograms:
// a frame question on a small board takes around a second, a 16-frame
// window tens of seconds.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// NewMetrics returns an empty set of metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		queries:      map[[2]string]uint64{},
		latency:      newHistogram(latencyBuckets),
		queueWait:    newHistogram(latencyBuckets),
		httpRequests: map[[2]string]uint64{},
	}
}

// Outcome names the outcome of a query for the palid_queries_total counter:
// "ok", "busy" (ErrBusy), "timeout" (ErrTimeout or a passed deadline),
// "canceled" (the asker went away) or "error".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}

// SetInfo records the model and backend for the palid_info gauge.
func (m *Metrics) SetInfo(model, backend string) {
	m.mu.Lock()
	m.model, m.backend = model, backend
	m.mu.Unlock()
}

// ObserveAnswer counts one finished or refused query. a.Source labels it
// ("unknown" when empty: on an error pass at least Answer{Source: q.Source}).
// The latency histograms and the token counters take successful answers
// only.
func (m *Metrics) ObserveAnswer(a Answer, err error) {
	src := a.Source
	if src == "" {
		src = "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queries[[2]string{src, Outcome(err)}]++
	if err != nil {
		return
	}
	m.latency.observe(a.Latency.Seconds())
	m.queueWait.observe(a.QueueTime.Seconds())
	if a.Tokens > 0 {
		m.tokens += uint64(a.Tokens)
		if work := a.Latency - a.QueueTime; work > 0 {
			m.tokensPerSec = float64(a.Tokens) / work.Seconds()
		}
	}
}

// SetQueueDepth records the number of questions waiting for the worker.
func (m *Metrics) SetQueueDepth(n int) {
	m.mu.Lock()
	m.queueDepth = n
	m.mu.Unlock()
}

// FrameCaptured counts one frame taken from the camera into the ring.
func (m *Metrics) FrameCaptured() {
	m.mu.Lock()
	m.framesOK++
	m.mu.Unlock()
}

// FrameDropped counts one frame lost (decode error, or overwritten in the
// ring before anyone used it).
func (m *Metrics) FrameDropped() {
	m.mu.Lock()
	m.framesDrop++
	m.mu.Unlock()
}

// ObserveHTTP counts one HTTP request by handler name and status code.
func (m *Metrics) ObserveHTTP(handler string, code int) {
	m.mu.Lock()
	m.httpRequests[[2]string{handler, strconv.Itoa(code)}]++
	m.mu.Unlock()
}

// WriteTo writes every metric in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cw := &countingWriter{w: bufio.NewWriter(w)}
	e := expositionWriter{w: cw}

	if m.model != "" || m.backend != "" {
		e.header("palid_info", "gauge", "The model and backend in use (always 1).")
		e.sample("palid_info", labels{"backend", m.backend, "model", m.model}, 1)
	}

	e.header("palid_queries_total", "counter", "Questions finished or refused, by trigger and outcome (ok, busy, timeout, canceled, error).")
	keys := make([][2]string, 0, len(m.queries))
	for k := range m.queries {
		keys = append(keys, k)
	}
	sortPairs(keys)
	for _, k := range keys {
		e.sample("palid_queries_total", labels{"outcome", k[1], "source", k[0]}, float64(m.queries[k]))
	}

	e.histogram("palid_query_latency_seconds", "Time from a question's arrival to its answer.", &m.latency)
	e.histogram("palid_query_queue_seconds", "Time a question waited in the queue before the worker took it.", &m.queueWait)

	e.header("palid_queue_depth", "gauge", "Questions waiting for the worker.")
	e.sample("palid_queue_depth", nil, float64(m.queueDepth))

	e.header("palid_frames_captured_total", "counter", "Frames taken from the camera.")
	e.sample("palid_frames_captured_total", nil, float64(m.framesOK))
	e.header("palid_frames_dropped_total", "counter", "Frames lost: undecodable, or overwritten before use.")
	e.sample("palid_frames_dropped_total", nil, float64(m.framesDrop))

	e.header("palid_generated_tokens_total", "counter", "Answer tokens generated.")
	e.sample("palid_generated_tokens_total", nil, float64(m.tokens))
	e.header("palid_tokens_per_second", "gauge", "Generated tokens per second of model time (queue wait excluded) of the latest answer.")
	e.sample("palid_tokens_per_second", nil, m.tokensPerSec)

	e.header("palid_http_requests_total", "counter", "HTTP requests served, by handler and status code.")
	keys = keys[:0]
	for k := range m.httpRequests {
		keys = append(keys, k)
	}
	sortPairs(keys)
	for _, k := range keys {
		e.sample("palid_http_requests_total", labels{"code", k[1], "handler", k[0]}, float64(m.httpRequests[k]))
	}

	if e.err == nil {
		e.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, e.err
}

func sortPairs(keys [][2]string) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
}

// histogram is a Prometheus histogram: counts per upper bound (not yet
// cumulative), a sum and a count.
type histogram struct {
	bounds []float64
	counts []uint64 // len(bounds)+1, the last is +Inf
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v: le is inclusive
	h.counts[i]++
	h.sum += v
	h.count++
}

// labels is a flat list of name, value pairs in the order written.
type labels []string

type expositionWriter struct {
	w   io.Writer
	err error
}

func (e *expositionWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}

func (e *expositionWriter) header(name, typ, help string) {
	e.printf("# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

func (e *expositionWriter) sample(name string, l labels, v float64) {
	var b strings.Builder
	b.WriteString(name)
	if len(l) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(l); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(l[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	e.printf("%s %s\n", b.String(), formatValue(v))
}

func (e *expositionWriter) histogram(name, help string, h *histogram) {
	e.header(name, "histogram", help)
	var cum uint64
	for i, ub := range h.bounds {
		cum += h.counts[i]
		e.sample(name+"_bucket", labels{"le", formatValue(ub)}, float64(cum))
	}
	cum += h.counts[len(h.bounds)]
	e.sample(name+"_bucket", labels{"le", "+Inf"}, float64(cum))
	e.sample(name+"_sum", nil, h.sum)
	e.sample(name+"_count", nil, float64(h.count))
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

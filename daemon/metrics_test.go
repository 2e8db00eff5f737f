package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promSample is one parsed sample line.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// promFamily is one metric family: its HELP, TYPE and samples in order.
type promFamily struct {
	help, typ string
	samples   []promSample
}

var (
	promNameRe   = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	promLabelRe  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	promSampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$`)
)

// parseExposition parses the Prometheus text format strictly: every sample
// belongs to the family whose HELP and TYPE came just before it, names and
// label names are valid, label values are properly escaped, no family or
// series appears twice.
func parseExposition(t *testing.T, text string) map[string]*promFamily {
	t.Helper()
	fams := map[string]*promFamily{}
	var cur *promFamily
	var curName string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "# HELP "):
			f := strings.SplitN(strings.TrimPrefix(l, "# HELP "), " ", 2)
			if len(f) != 2 || !promNameRe.MatchString(f[0]) {
				t.Fatalf("line %d: bad HELP line %q", line, l)
			}
			if _, dup := fams[f[0]]; dup {
				t.Fatalf("line %d: family %s declared twice", line, f[0])
			}
			curName = f[0]
			cur = &promFamily{help: f[1]}
			fams[curName] = cur
		case strings.HasPrefix(l, "# TYPE "):
			f := strings.Fields(strings.TrimPrefix(l, "# TYPE "))
			if len(f) != 2 || f[0] != curName || cur.typ != "" {
				t.Fatalf("line %d: TYPE %q does not follow its HELP", line, l)
			}
			switch f[1] {
			case "counter", "gauge", "histogram", "summary", "untyped":
			default:
				t.Fatalf("line %d: bad type %q", line, f[1])
			}
			cur.typ = f[1]
		case strings.HasPrefix(l, "#"):
			t.Fatalf("line %d: unexpected comment %q", line, l)
		case l == "":
			t.Fatalf("line %d: empty line", line)
		default:
			m := promSampleRe.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("line %d: bad sample line %q", line, l)
			}
			if cur == nil || cur.typ == "" {
				t.Fatalf("line %d: sample before HELP/TYPE", line)
			}
			name := m[1]
			base := name
			if cur.typ == "histogram" {
				base = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			}
			if base != curName {
				t.Fatalf("line %d: sample %s inside family %s", line, name, curName)
			}
			labels := parseLabels(t, line, m[2])
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				t.Fatalf("line %d: bad value %q", line, m[3])
			}
			key := name + m[2]
			if seen[key] {
				t.Fatalf("line %d: series %s repeated", line, key)
			}
			seen[key] = true
			cur.samples = append(cur.samples, promSample{name, labels, v})
		}
	}
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("exposition does not end with a newline")
	}
	return fams
}

func parseLabels(t *testing.T, line int, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if s == "" {
		return out
	}
	s = s[1 : len(s)-1]
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || !promLabelRe.MatchString(s[:eq]) || len(s) < eq+2 || s[eq+1] != '"' {
			t.Fatalf("line %d: bad label in %q", line, s)
		}
		name := s[:eq]
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' {
				i++
				if i >= len(s) {
					t.Fatalf("line %d: dangling escape", line)
				}
				switch s[i] {
				case '\\':
					val.WriteByte('\\')
				case '"':
					val.WriteByte('"')
				case 'n':
					val.WriteByte('\n')
				default:
					t.Fatalf("line %d: bad escape \\%c", line, s[i])
				}
				continue
			}
			if s[i] == '\n' {
				t.Fatalf("line %d: raw newline in label", line)
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			t.Fatalf("line %d: unterminated label value", line)
		}
		if _, dup := out[name]; dup {
			t.Fatalf("line %d: label %s repeated", line, name)
		}
		out[name] = val.String()
		s = s[i+1:]
		if strings.HasPrefix(s, ",") {
			s = s[1:]
		} else if s != "" {
			t.Fatalf("line %d: junk after label %s: %q", line, name, s)
		}
	}
	return out
}

// checkHistogram verifies buckets are sorted by le, cumulative, end with
// +Inf equal to _count, and that _sum is present.
func checkHistogram(t *testing.T, name string, f *promFamily) (count, sum float64, buckets map[string]float64) {
	t.Helper()
	if f == nil || f.typ != "histogram" {
		t.Fatalf("%s: missing or not a histogram", name)
	}
	buckets = map[string]float64{}
	prevLE, prevV := math.Inf(-1), -1.0
	var inf float64 = -1
	var haveSum, haveCount bool
	for _, s := range f.samples {
		switch s.name {
		case name + "_bucket":
			if haveSum || haveCount {
				t.Fatalf("%s: bucket after _sum/_count", name)
			}
			le, err := strconv.ParseFloat(s.labels["le"], 64)
			if err != nil {
				t.Fatalf("%s: bad le %q", name, s.labels["le"])
			}
			if le <= prevLE {
				t.Fatalf("%s: le %v not increasing", name, le)
			}
			if s.value < prevV {
				t.Fatalf("%s: bucket le=%v holds %v < previous %v: not cumulative", name, le, s.value, prevV)
			}
			prevLE, prevV = le, s.value
			buckets[s.labels["le"]] = s.value
			if math.IsInf(le, 1) {
				inf = s.value
			}
		case name + "_sum":
			haveSum, sum = true, s.value
		case name + "_count":
			haveCount, count = true, s.value
		default:
			t.Fatalf("%s: unexpected sample %s", name, s.name)
		}
	}
	if inf < 0 || !math.IsInf(prevLE, 1) {
		t.Fatalf("%s: no +Inf bucket last", name)
	}
	if !haveSum || !haveCount {
		t.Fatalf("%s: missing _sum or _count", name)
	}
	if inf != count {
		t.Fatalf("%s: +Inf bucket %v != _count %v", name, inf, count)
	}
	return count, sum, buckets
}

func sampleValue(t *testing.T, f *promFamily, labels map[string]string) float64 {
	t.Helper()
	for _, s := range f.samples {
		match := len(s.labels) == len(labels)
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			return s.value
		}
	}
	t.Fatalf("no sample with labels %v", labels)
	return 0
}

func exposition(t *testing.T, m *Metrics) string {
	t.Helper()
	var b strings.Builder
	n, err := m.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if int(n) != b.Len() {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, b.Len())
	}
	return b.String()
}

func TestMetricsExposition(t *testing.T) {
	m := NewMetrics()
	m.SetInfo("pali3-demo", `cpu "neon"`)
	ok := func(src string, lat, queue time.Duration, tokens int) {
		m.ObserveAnswer(Answer{Source: src, Latency: lat, QueueTime: queue, Tokens: tokens}, nil)
	}
	ok("mqtt", 300*time.Millisecond, 100*time.Millisecond, 4)
	ok("mqtt", 1*time.Second, 0, 2)             // exactly on a bucket bound: le is inclusive
	ok("http", 7*time.Second, 3*time.Second, 8) // tokens/s of the latest: 8 / 4 s = 2
	ok("interval", 200*time.Second, 0, 0)       // beyond the last bound: +Inf only
	m.ObserveAnswer(Answer{Source: "http"}, ErrBusy)
	m.ObserveAnswer(Answer{Source: "http"}, fmt.Errorf("queued: %w", ErrTimeout))
	m.ObserveAnswer(Answer{Source: "mqtt"}, context.DeadlineExceeded)
	m.ObserveAnswer(Answer{}, errors.New("model exploded"))
	m.ObserveAnswer(Answer{Source: "http"}, context.Canceled)
	m.SetQueueDepth(3)
	for range 5 {
		m.FrameCaptured()
	}
	m.FrameDropped()
	m.ObserveHTTP("chat", 200)
	m.ObserveHTTP("chat", 200)
	m.ObserveHTTP("chat", 429)

	text := exposition(t, m)
	fams := parseExposition(t, text)

	info := fams["palid_info"]
	if info == nil || info.typ != "gauge" || sampleValue(t, info, map[string]string{"model": "pali3-demo", "backend": `cpu "neon"`}) != 1 {
		t.Errorf("palid_info wrong:\n%s", text)
	}
	q := fams["palid_queries_total"]
	if q == nil || q.typ != "counter" {
		t.Fatalf("palid_queries_total missing:\n%s", text)
	}
	for _, c := range []struct {
		src, outcome string
		want         float64
	}{
		{"mqtt", "ok", 2}, {"http", "ok", 1}, {"interval", "ok", 1}, {"http", "busy", 1},
		{"http", "timeout", 1}, {"mqtt", "timeout", 1}, {"unknown", "error", 1}, {"http", "canceled", 1},
	} {
		if got := sampleValue(t, q, map[string]string{"source": c.src, "outcome": c.outcome}); got != c.want {
			t.Errorf("queries{source=%s,outcome=%s} = %v, want %v", c.src, c.outcome, got, c.want)
		}
	}
	if len(q.samples) != 8 {
		t.Errorf("palid_queries_total has %d series, want 8", len(q.samples))
	}

	count, sum, b := checkHistogram(t, "palid_query_latency_seconds", fams["palid_query_latency_seconds"])
	if count != 4 || math.Abs(sum-208.3) > 1e-9 {
		t.Errorf("latency count %v sum %v, want 4 and 208.3", count, sum)
	}
	for le, want := range map[string]float64{"0.25": 0, "0.5": 1, "1": 2, "5": 2, "10": 3, "120": 3, "+Inf": 4} {
		if b[le] != want {
			t.Errorf("latency bucket le=%s = %v, want %v", le, b[le], want)
		}
	}
	count, sum, b = checkHistogram(t, "palid_query_queue_seconds", fams["palid_query_queue_seconds"])
	if count != 4 || math.Abs(sum-3.1) > 1e-9 || b["0.05"] != 2 || b["0.1"] != 3 || b["2.5"] != 3 || b["5"] != 4 {
		t.Errorf("queue histogram count %v sum %v buckets %v", count, sum, b)
	}

	for name, want := range map[string]float64{
		"palid_queue_depth":            3,
		"palid_frames_captured_total":  5,
		"palid_frames_dropped_total":   1,
		"palid_generated_tokens_total": 14,
		"palid_tokens_per_second":      2,
	} {
		f := fams[name]
		if f == nil || len(f.samples) != 1 || f.samples[0].value != want {
			t.Errorf("%s = %+v, want one sample %v", name, f, want)
		}
	}
	if typ := fams["palid_queue_depth"].typ; typ != "gauge" {
		t.Errorf("queue depth is a %s", typ)
	}
	if typ := fams["palid_frames_dropped_total"].typ; typ != "counter" {
		t.Errorf("frames dropped is a %s", typ)
	}
	h := fams["palid_http_requests_total"]
	if sampleValue(t, h, map[string]string{"handler": "chat", "code": "200"}) != 2 ||
		sampleValue(t, h, map[string]string{"handler": "chat", "code": "429"}) != 1 {
		t.Errorf("http requests wrong:\n%s", text)
	}

	// The output is deterministic: the same state writes the same bytes.
	if again := exposition(t, m); again != text {
		t.Error("two expositions of the same state differ")
	}
}

func TestMetricsEmpty(t *testing.T) {
	fams := parseExposition(t, exposition(t, NewMetrics()))
	if _, ok := fams["palid_info"]; ok {
		t.Error("palid_info written without SetInfo")
	}
	count, _, _ := checkHistogram(t, "palid_query_latency_seconds", fams["palid_query_latency_seconds"])
	if count != 0 {
		t.Errorf("empty histogram count %v", count)
	}
}

func TestMetricsLabelEscaping(t *testing.T) {
	m := NewMetrics()
	odd := "a\\b\"c\nd"
	m.ObserveAnswer(Answer{Source: odd}, nil)
	fams := parseExposition(t, exposition(t, m))
	if got := sampleValue(t, fams["palid_queries_total"], map[string]string{"source": odd, "outcome": "ok"}); got != 1 {
		t.Errorf("escaped label round trip gave %v", got)
	}
}

func TestOutcome(t *testing.T) {
	for err, want := range map[error]string{
		nil:                             "ok",
		ErrBusy:                         "busy",
		fmt.Errorf("x: %w", ErrTimeout): "timeout",
		context.DeadlineExceeded:        "timeout",
		context.Canceled:                "canceled",
		errors.New("disk on fire"):      "error",
	} {
		if got := Outcome(err); got != want {
			t.Errorf("Outcome(%v) = %q, want %q", err, got, want)
		}
	}
}

func BenchmarkMetricsWriteTo(b *testing.B) {
	m := NewMetrics()
	for i := range 1000 {
		m.ObserveAnswer(Answer{Source: "mqtt", Latency: time.Duration(i) * time.Millisecond}, nil)
	}
	var sb strings.Builder
	for b.Loop() {
		sb.Reset()
		m.WriteTo(&sb)
	}
}

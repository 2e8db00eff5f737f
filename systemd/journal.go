package systemd

import (
	"context"
	"io"
	"log/slog"

	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// NewLogger returns palid's logger: a journal handler with structured fields
// when stderr is connected to the journal (JOURNAL_STREAM matches), plain
// text on w otherwise.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if ok, _ := journal.StderrIsJournalStream(); ok && journal.Enabled() {
		return slog.New(NewJournalHandler(journal.Send, level))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// SendFunc delivers one journal entry (journal.Send in production).
type SendFunc func(message string, priority journal.Priority, vars map[string]string) error

// JournalHandler is a slog.Handler writing entries to the journal with every
// attribute as a field: "query_id" becomes QUERY_ID, a group "mqtt" with
// "topic" becomes MQTT_TOPIC.
type JournalHandler struct {
	send   SendFunc
	level  slog.Leveler
	attrs  map[string]string
	prefix string
	mu     *sync.Mutex
}

// NewJournalHandler returns a handler that hands entries to send.
func NewJournalHandler(send SendFunc, level slog.Leveler) *JournalHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &JournalHandler{send: send, level: level, attrs: map[string]string{}, mu: &sync.Mutex{}}
}

// Enabled reports whether level is logged.
func (h *JournalHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle sends one record.
func (h *JournalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := make(map[string]string, len(h.attrs)+r.NumAttrs()+1)
	for k, v := range h.attrs {
		vars[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(vars, h.prefix, a)
		return true
	})
	vars["SYSLOG_IDENTIFIER"] = "palid"
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.send(r.Message, priority(r.Level), vars)
}

// WithAttrs returns a handler that adds attrs to every entry.
func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = make(map[string]string, len(h.attrs)+len(attrs))
	for k, v := range h.attrs {
		h2.attrs[k] = v
	}
	for _, a := range attrs {
		addAttr(h2.attrs, h.prefix, a)
	}
	return &h2
}

// WithGroup returns a handler that prefixes later attributes with name.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + fieldName(name) + "_"
	return &h2
}

func addAttr(vars map[string]string, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += fieldName(a.Key) + "_"
		}
		for _, g := range a.Value.Group() {
			addAttr(vars, p, g)
		}
		return
	}
	key := prefix + fieldName(a.Key)
	if key == "" || key[0] == '_' || (key[0] >= '0' && key[0] <= '9') {
		key = "F" + key // journal field names must start with a letter
	}
	vars[key] = a.Value.String()
}

// fieldName makes a journal field name: upper case letters, digits and '_'.
func fieldName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palid/palid/mqtt"
)

// enqueueMQTT is the MQTT client's Enqueue: it must not block. It returns
// false when the queue is full, and the client answers busy.
func (d *Daemon) enqueueMQTT(req mqtt.Request) bool {
	q := Question{
		Text:      req.Question,
		Mode:      string(req.Mode),
		Frames:    req.Frames,
		Stride:    req.Stride,
		MaxTokens: req.MaxTokens,
		Timeout:   req.Timeout(),
		Source:    "mqtt",
		Snapshot:  req.Snapshot,
	}
	arrived := req.Received
	err := d.submit(q, func(a Answer, err error) {
		d.publishAnswer(a, err, req.Transaction, req.Format, arrived, true)
	})
	if err != nil {
		d.record(q, Answer{Question: q.Text, Source: q.Source}, err)
	}
	return err == nil
}

// askStanding queues the standing question for a trigger (interval, gpio,
// button); a full queue skips this ask.
func (d *Daemon) askStanding(source string) {
	d.mu.Lock()
	st := d.standing
	d.mu.Unlock()
	if strings.TrimSpace(st.Question) == "" {
		return
	}
	q := Question{Text: st.Question, Mode: string(st.Mode), Source: source, Snapshot: true}
	now := time.Now()
	err := d.submit(q, func(a Answer, err error) {
		d.publishAnswer(a, err, "", mqtt.FormatText, now, false)
	})
	if err != nil {
		d.log.Warn("standing question skipped", "source", source, "err", err)
	}
}

// publishAnswer sends a job's outcome: the response (for MQTT requests),
// the answer event and state, and the snapshot when asked for.
func (d *Daemon) publishAnswer(a Answer, err error, transaction string, format mqtt.Format, arrived time.Time, respond bool) {
	if d.mq == nil {
		return
	}
	data := &mqtt.Data{
		ID: a.ID, Question: a.Question, Answer: a.Text, Mode: mqtt.Mode(a.Mode), Frames: a.Frames,
		CapturedAt: a.CapturedAt.UTC(), Model: a.Model,
		LatencyMS: ms(a.Latency), QueueMS: ms(a.QueueTime),
	}
	if err == nil {
		data.Value, err = answerValue(a.Text, format)
	}
	if err != nil {
		msg := err.Error()
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrBusy) {
			msg = "failed: " + msg
		}
		if respond {
			d.mq.Respond(mqtt.ErrorResponse(transaction, msg))
		}
		d.mq.PublishAnswer(mqtt.AnswerEvent{EventType: mqtt.EventError, Source: a.Source, Transaction: transaction, Error: msg, Data: data})
		d.publishStatus()
		return
	}
	if respond {
		d.mq.Respond(mqtt.Response{Status: mqtt.StatusOK, Transaction: transaction, Data: data})
	}
	d.mq.PublishAnswer(mqtt.AnswerEvent{EventType: mqtt.EventAnswer, Source: a.Source, Transaction: transaction, Data: data})
	if a.Snapshot != nil {
		d.mq.PublishSnapshot(a.Snapshot)
	}
	d.publishStatus()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// answerValue interprets the answer text for the request's format:
// yes_no gives true or false, json the parsed value.
func answerValue(text string, format mqtt.Format) (any, error) {
	switch format {
	case mqtt.FormatYesNo:
		t := strings.ToLower(strings.TrimSpace(text))
		t = strings.TrimRight(t, ".!")
		switch {
		case t == "yes" || strings.HasPrefix(t, "yes ") || strings.HasPrefix(t, "yes,"):
			return true, nil
		case t == "no" || strings.HasPrefix(t, "no ") || strings.HasPrefix(t, "no,"):
			return false, nil
		}
		return nil, fmt.Errorf("format yes_no: the answer %q is neither yes nor no", text)
	case mqtt.FormatJSON:
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			return nil, fmt.Errorf("format json: the answer %q is not JSON", text)
		}
		return v, nil
	}
	return nil, nil
}

// onSetting applies a change of the standing question from MQTT.
func (d *Daemon) onSetting(s mqtt.Setting) {
	if s.Kind == mqtt.SettingAsk {
		go d.askStanding("button")
		return
	}
	d.mu.Lock()
	switch s.Kind {
	case mqtt.SettingQuestion:
		d.standing.Question = s.Question
	case mqtt.SettingMode:
		d.standing.Mode = s.Mode
	case mqtt.SettingInterval:
		d.standing.Interval = s.Interval
	case mqtt.SettingEnabled:
		d.standing.Enabled = s.Enabled
	}
	st := d.standing
	d.mu.Unlock()
	d.log.Info("standing question changed", "kind", string(s.Kind), "question", st.Question,
		"mode", string(st.Mode), "interval", st.Interval.String(), "enabled", st.Enabled)
	if d.mq != nil {
		go d.mq.PublishStanding(st)
	}
	select {
	case d.intervalC <- struct{}{}:
	default:
	}
}

// intervalLoop asks the standing question every interval while enabled.
func (d *Daemon) intervalLoop(ctx context.Context) {
	var t *time.Timer
	var tc <-chan time.Time
	reset := func() {
		if t != nil {
			t.Stop()
		}
		tc = nil
		d.mu.Lock()
		st := d.standing
		d.mu.Unlock()
		if st.Enabled && st.Interval > 0 {
			t = time.NewTimer(st.Interval)
			tc = t.C
		}
	}
	reset()
	for {
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-d.intervalC:
			reset()
		case <-tc:
			d.askStanding("interval")
			reset()
		}
	}
}

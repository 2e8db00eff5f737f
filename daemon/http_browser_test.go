package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// This file drives headless Chromium through the Chrome DevTools protocol
// with a minimal client: enough to load the status page, type, click and
// read the page back.

// cdpClient speaks the DevTools protocol over one websocket, in flat
// session mode (sessionId on each message).
type cdpClient struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	next    int
	pending map[int]chan cdpMessage
	err     error // why the reader stopped
	done    chan struct{}
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func dialCDP(ctx context.Context, url string) (*cdpClient, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	c := &cdpClient{conn: conn, pending: map[int]chan cdpMessage{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *cdpClient) read() {
	defer close(c.done)
	for {
		var m cdpMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		if m.ID == 0 {
			continue // an event: this client polls instead
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one command and waits for its result.
func (c *cdpClient) call(ctx context.Context, session, method string, params any, result any) error {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	c.wmu.Lock()
	err := c.conn.WriteJSON(cdpMessage{ID: id, Method: method, Params: params, SessionID: session})
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("%s: connection closed: %v", method, c.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (c *cdpClient) Close() error { return c.conn.Close() }

// cdpPage is one tab.
type cdpPage struct {
	c       *cdpClient
	session string
}

// eval runs a JavaScript expression in the page and decodes its value.
func (p *cdpPage) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.c.call(ctx, p.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	}, &res)
	if err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return fmt.Errorf("%s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out == nil {
		return nil
	}
	if len(res.Result.Value) == 0 {
		return fmt.Errorf("%s gave %s, no value", expr, res.Result.Type)
	}
	return json.Unmarshal(res.Result.Value, out)
}

// waitFor evaluates expr, a string expression, until cond holds on its
// value or ctx ends; it returns the last value.
func (p *cdpPage) waitFor(ctx context.Context, what, expr string, cond func(string) bool) (string, error) {
	var v string
	for {
		err := p.eval(ctx, expr, &v)
		if err == nil && cond(v) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("waiting for %s: last value %q, err %v", what, v, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// click presses and releases the left mouse button over an element's
// centre, as a person would.
func (p *cdpPage) click(ctx context.Context, id string) error {
	// The point must hit the element itself: a late layout change (a
	// frame arriving, say) would otherwise send the click elsewhere.
	var r struct {
		X, Y float64
		Hit  bool
	}
	if err := p.eval(ctx, fmt.Sprintf(`(() => { const e = document.getElementById(%q); const b = e.getBoundingClientRect();
		const x = b.x + b.width/2, y = b.y + b.height/2; const at = document.elementFromPoint(x, y);
		return {x: x, y: y, hit: at !== null && e.contains(at)}; })()`, id), &r); err != nil {
		return err
	}
	if !r.Hit {
		return fmt.Errorf("click #%s: another element covers its centre (%.0f, %.0f)", id, r.X, r.Y)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		ev := map[string]any{"type": typ, "x": r.X, "y": r.Y}
		if typ != "mouseMoved" {
			ev["button"] = "left"
			ev["clickCount"] = 1
		}
		if err := p.c.call(ctx, p.session, "Input.dispatchMouseEvent", ev, nil); err != nil {
			return err
		}
	}
	return nil
}

// typeText focuses an element and types text into it.
func (p *cdpPage) typeText(ctx context.Context, id, text string) error {
	if err := p.eval(ctx, fmt.Sprintf(`document.getElementById(%q).focus()`, id), nil); err != nil {
		return err
	}
	return p.c.call(ctx, p.session, "Input.insertText", map[string]any{"text": text}, nil)
}

// startChromium launches headless Chromium and opens a tab; it skips the
// test when Chromium is not installed (outside CI).
func startChromium(t *testing.T, ctx context.Context) *cdpPage {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium; scripts/deps.sh should)")
		}
		t.Skip("chromium is not installed: apt-get install chromium to run the status page test")
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+dir, "--remote-debugging-port=0", "about:blank")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // chromium and its helpers
		<-exited
	})

	// Chromium writes the port it chose and the browser's path here.
	portFile := filepath.Join(dir, "DevToolsActivePort")
	var lines []string
	for {
		data, err := os.ReadFile(portFile)
		if err == nil {
			if lines = strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) == 2 {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("chromium exited before opening DevTools: %s", clip(stderr.String(), 2000))
		case <-ctx.Done():
			t.Fatalf("no %s: %s", portFile, clip(stderr.String(), 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := dialCDP(ctx, "ws://127.0.0.1:"+lines[0]+lines[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	p := &cdpPage{c: c, session: att.SessionID}
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := c.call(ctx, p.session, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *cdpPage) navigate(ctx context.Context, url string) error {
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.c.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return errors.New(res.ErrorText)
	}
	return nil
}

// TestStatusPageInChromium loads the status page in headless Chromium,
// checks it shows the daemon's facts and the camera's frame, types a
// question into the ask box, clicks Ask and reads the streamed answer.
func TestStatusPageInChromium(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ts := newTestServer(t, HTTPOptions{})
	page := startChromium(t, ctx)
	if err := page.navigate(ctx, ts.URL+"/"); err != nil {
		t.Fatal(err)
	}
	nonEmpty := func(s string) bool { return s != "" && s != "…" }
	for _, c := range []struct{ id, want string }{
		{"model", "pali3-demo"}, {"backend", "cpu"}, {"kernels", "dotQ8AVX2, gemmQ8AVX2"},
		{"camera", "ok (synthetic:1)"}, {"queue", "0 / 8"},
	} {
		got, err := page.waitFor(ctx, c.id, fmt.Sprintf(`document.getElementById(%q).textContent`, c.id), nonEmpty)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("#%s shows %q, want %q", c.id, got, c.want)
		}
	}
	// The newest frame arrives through /snapshot.jpg (64x48), with its
	// time line.
	if _, err := page.waitFor(ctx, "the frame", `String(document.getElementById('frame').naturalWidth) + 'x' + document.getElementById('frame').naturalHeight + ' ' + document.getElementById('frame-time').textContent`,
		func(s string) bool { return strings.HasPrefix(s, "64x48 captured ") }); err != nil {
		t.Fatal(err)
	}

	const question = "Is the gate open?"
	if err := page.typeText(ctx, "question", question); err != nil {
		t.Fatal(err)
	}
	if err := page.click(ctx, "send"); err != nil {
		t.Fatal(err)
	}
	state, err := page.waitFor(ctx, "the answer", `document.getElementById('answer').dataset.state || ''`,
		func(s string) bool { return s == "done" || s == "error" })
	if err != nil {
		t.Fatal(err)
	}
	var answer, meta string
	page.eval(ctx, `document.getElementById('answer').textContent`, &answer)
	page.eval(ctx, `document.getElementById('answer-meta').textContent`, &meta)
	if state != "done" || answer != "is the gate open? about the camera" {
		t.Fatalf("page shows %s %q", state, answer)
	}
	if !strings.HasPrefix(meta, "answered in ") || !strings.HasSuffix(meta, "from 1 frame") {
		t.Errorf("answer meta %q", meta)
	}
	qs := ts.asker.questions()
	if len(qs) != 1 || qs[0].Text != question || qs[0].Source != "http" || qs[0].Mode != "frame" || qs[0].OnToken == nil {
		t.Fatalf("the asker got %+v", qs)
	}
	// The recent list picks the question up.
	if _, err := page.waitFor(ctx, "the recent list", `document.getElementById('recent').textContent`,
		func(s string) bool { return strings.Contains(s, question) && strings.Contains(s, "about the camera") }); err != nil {
		t.Fatal(err)
	}

	// Ticking "video window" asks about the camera's last frames.
	if err := page.click(ctx, "video"); err != nil {
		t.Fatal(err)
	}
	page.eval(ctx, `document.getElementById('question').value = ''`, nil)
	if err := page.typeText(ctx, "question", "Which way did the car go?"); err != nil {
		t.Fatal(err)
	}
	if err := page.click(ctx, "send"); err != nil {
		t.Fatal(err)
	}
	if _, err := page.waitFor(ctx, "the second answer", `document.getElementById('answer').dataset.state + ' ' + document.getElementById('answer').textContent`,
		func(s string) bool { return s == "done which way did the car go? about the camera" }); err != nil {
		t.Fatal(err)
	}
	if qs := ts.asker.questions(); len(qs) != 2 || qs[1].Mode != "video" {
		t.Errorf("second question %+v", qs[len(qs)-1])
	}
}

// TestStatusPageTokenInChromium checks the page with a bearer token: it
// asks for the token, keeps it, then works.
func TestStatusPageTokenInChromium(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ts := newTestServer(t, HTTPOptions{Token: "door-code"})
	page := startChromium(t, ctx)
	if err := page.navigate(ctx, ts.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if _, err := page.waitFor(ctx, "the token box", `String(document.getElementById('token-box').hidden)`,
		func(s string) bool { return s == "false" }); err != nil {
		t.Fatal(err)
	}
	if err := page.typeText(ctx, "token", "door-code"); err != nil {
		t.Fatal(err)
	}
	if err := page.eval(ctx, `document.getElementById('token-box').requestSubmit()`, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := page.waitFor(ctx, "the model", `document.getElementById('model').textContent`,
		func(s string) bool { return s == "pali3-demo" }); err != nil {
		t.Fatal(err)
	}
	// Wait for the frame and its time line, which move the ask box down
	// as they arrive, before clicking in it.
	if _, err := page.waitFor(ctx, "the frame", `String(document.getElementById('frame').naturalWidth) + ' ' + document.getElementById('frame-time').textContent`,
		func(s string) bool { return strings.HasPrefix(s, "64 captured ") }); err != nil {
		t.Fatal(err)
	}
	if err := page.typeText(ctx, "question", "Any post?"); err != nil {
		t.Fatal(err)
	}
	if err := page.click(ctx, "send"); err != nil {
		t.Fatal(err)
	}
	if _, err := page.waitFor(ctx, "the answer", `document.getElementById('answer').dataset.state + ' ' + document.getElementById('answer').textContent`,
		func(s string) bool { return s == "done any post? about the camera" }); err != nil {
		t.Fatal(err)
	}
}

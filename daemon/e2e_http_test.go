package daemon

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/palid/palid/internal/mosquittotest"
)

// TestHTTPWithRealDaemon asks through the OpenAI-compatible API of a real
// daemon (tiny model, synthetic camera), with and without an image.
func TestHTTPWithRealDaemon(t *testing.T) {
	b := mosquittotest.Start(t)
	d := startDaemon(t, b.URL(), func(c *Config) { c.HTTP.Addr = "127.0.0.1:0" })
	base := "http://" + d.HTTPAddr()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(3, 3, color.RGBA{255, 0, 0, 255})
	var jb bytes.Buffer
	jpeg.Encode(&jb, img, nil)
	dataURL := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jb.Bytes())
	for name, body := range map[string]string{
		"camera": `{"model": "palid", "messages": [{"role": "user", "content": "what color is the circle?"}], "max_tokens": 4}`,
		"image": `{"model": "palid", "messages": [{"role": "user", "content": [{"type": "text", "text": "caption en"},
			{"type": "image_url", "image_url": {"url": "` + dataURL + `"}}]}], "max_tokens": 4}`,
	} {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, raw)
		}
		var out struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct{ Role, Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(raw, &out); err != nil || out.Object != "chat.completion" || len(out.Choices) != 1 || out.Choices[0].Message.Role != "assistant" {
			t.Fatalf("%s: %s (%v)", name, raw, err)
		}
	}
	h := d.History()
	if len(h) != 2 {
		t.Fatalf("history %+v", h)
	}
	for _, a := range h {
		if a.Source != "http" || a.Frames != 1 {
			t.Errorf("answer %+v", a)
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(m, []byte(`source="http"`)) || !bytes.Contains(m, []byte("frames")) {
		t.Errorf("metrics lack the answers or frames:\n%s", m)
	}
	resp, err = http.Get(base + "/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := jpeg.Decode(bytes.NewReader(snap)); err != nil || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("snapshot: %v %q", err, resp.Header.Get("Content-Type"))
	}
}

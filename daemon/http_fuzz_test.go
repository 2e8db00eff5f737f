package daemon

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/jpeg"
	"strings"
	"testing"
)

func FuzzParseChatRequest(f *testing.F) {
	img := base64.StdEncoding.EncodeToString(jpegBytes(f, 8, 8, "red"))
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		fmt.Sprintf(`{"messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s","detail":"low"}}]}]}`, img),
		fmt.Sprintf(`{"messages":[{"role":"system","content":"x"},{"role":"user","content":[{"type":"text","text":"Image 1:"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s"}},"q"]}],"max_completion_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`, img),
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"https://x/y.png"}]}],"n":1,"palid":{"mode":"video","frames":4,"stride":2,"lang":"de","timeout_s":3}}`,
		`{"messages":[{"role":"user","content":null}],"max_tokens":-1}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}`,
		`[]`, `null`, `{"messages":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := parseChatRequest(data)
		if err != nil {
			if err.Status != 400 || err.Message == "" || err.Type != "invalid_request_error" {
				t.Fatalf("bad error %+v", err)
			}
			return
		}
		if q.Text == "" || len(q.Images) > MaxHTTPImages || (q.Mode != "frame" && q.Mode != "video") || q.MaxTokens < 0 || q.Frames < 0 || q.Frames > MaxHTTPImages {
			t.Fatalf("accepted a bad query %+v", q)
		}
		if len(q.Images) > 1 && q.Mode != "video" {
			t.Fatalf("%d images in mode %s", len(q.Images), q.Mode)
		}
		for _, img := range q.Images {
			if img == nil || img.Bounds().Empty() {
				t.Fatal("nil or empty image accepted")
			}
		}
	})
}

// BenchmarkParseChatRequest16Frames measures reading a 16-frame request as
// Frigate or LLM Vision sends it: JSON, base64 and JPEG decoding of 16
// 640x480 frames.
func BenchmarkParseChatRequest16Frames(b *testing.B) {
	img := noisyFrameB64(b, 640, 480)
	var parts []string
	for range 16 {
		parts = append(parts, fmt.Sprintf(`{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s"}}`, img))
	}
	body := []byte(`{"model":"palid","messages":[{"role":"user","content":[{"type":"text","text":"what happened?"},` +
		strings.Join(parts, ",") + `]}]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		q, err := parseChatRequest(body)
		if err != nil || len(q.Images) != 16 {
			b.Fatal(err)
		}
	}
}

func noisyFrameB64(b *testing.B, w, h int) string {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	x := uint32(7)
	for i := range img.Pix {
		x = x*1664525 + 1013904223
		img.Pix[i] = byte(x>>28) + byte(i/4%w) // a gradient with some noise
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		b.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

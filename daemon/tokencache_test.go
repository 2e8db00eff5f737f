package daemon

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/delegate"
	"github.com/palid/palid/internal/mosquittotest"
	"github.com/palid/palid/mqtt"
	palirt "github.com/palid/palid/runtime"
)

// TestTokenCacheServesVideoQuestions runs the daemon with the visual-token
// cache: frames are encoded as they arrive and a video question takes its
// tokens from the cache, giving the same answer as encoding them anew.
func TestTokenCacheServesVideoQuestions(t *testing.T) {
	b := mosquittotest.Start(t)
	d := startDaemon(t, b.URL(), func(c *Config) { c.Window.TokenCache = true; c.FPS = 10 })
	for deadline := time.Now().Add(30 * time.Second); d.tokens.Len() < 16; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("token cache holds %d frames after 30 s, want 16", d.tokens.Len())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := mqtt.Query(ctx, b.URL(), "cam", mqtt.Request{Question: "which way is the red circle moving?", Mode: mqtt.ModeVideo, Frames: 4, Stride: 1})
	if err != nil || resp.Status != mqtt.StatusOK || resp.Data.Frames != 4 {
		t.Fatalf("%+v %v", resp, err)
	}
	st := d.tokens.Stats()
	if st.Encoded < 16 || st.Hits < 3 {
		t.Errorf("token cache stats %+v: want frames encoded ahead and hits", st)
	}
	// The cached tokens are the tokens: the same answer without the cache.
	w, err := d.ring.Window(4, capture.Stride{Frames: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Only tokens the cache already holds are compared (Tokens would encode
	// a missing frame itself, comparing the encoder with itself); the
	// newest frame may still be on its way, the others must be there.
	hits := 0
	for i, f := range w.Frames {
		cached, ok := d.tokens.Get(f.Seq)
		if !ok {
			continue
		}
		hits++
		fresh, err := d.encodeFrame(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for j := range fresh {
			if fresh[j] != cached[j] {
				t.Fatalf("frame %d token value %d: cached %v, fresh %v", i, j, cached[j], fresh[j])
			}
		}
	}
	if hits < 3 {
		t.Fatalf("only %d of the window's 4 frames were in the token cache", hits)
	}
}

// BenchmarkVideoQuestion measures a 16-frame question on the bundled model
// (or a tiny random one) with every frame encoded at question time
// ("encode") and with the tokens already cached ("cached"), the
// visual-token cache's gain:
//
//	go test -run XXX -bench VideoQuestion ./daemon/
func BenchmarkVideoQuestion(b *testing.B) {
	var m *palirt.Model
	if _, err := os.Stat("../models/default/model.gguf"); err == nil {
		mm, err := palirt.Load("../models/default", palirt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		m = mm
		defer m.Close()
	} else {
		m = tinyModel(b)
	}
	d := &Daemon{model: m, vision: delegate.NewCPU(m), cfg: DefaultConfig()}
	src, err := capture.OpenWith("synthetic:5", capture.Options{Unpaced: true, FPS: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var frames []capture.Frame
	for len(frames) < 16 {
		f, err := src.Next(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, f)
	}
	ctx := context.Background()
	prompt := "answer en which way is the red circle moving?"
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			visual := make([][]float32, len(frames))
			for i, f := range frames {
				if visual[i], err = d.encodeFrame(ctx, f); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := m.Generate(ctx, palirt.Request{Visual: visual, Prompt: prompt, MaxTokens: 8}); err != nil {
				b.Fatal(err)
			}
		}
	})
	cache := capture.NewTokenCache(d.encodeFrame, capture.TokenCacheOptions{})
	if _, err := cache.Tokens(ctx, frames); err != nil { // filled ahead, as the capture loop does
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			visual, err := cache.Tokens(ctx, frames)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Generate(ctx, palirt.Request{Visual: visual, Prompt: prompt, MaxTokens: 8}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package capture

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"testing"
)

// benchSizes are the camera resolutions measured.
var benchSizes = []struct{ w, h int }{{640, 480}, {1280, 720}}

// BenchmarkFrame measures one frame from raw camera bytes to the model's
// input: decode + resize to 224x224 + normalise to CHW [-1, 1].
func BenchmarkFrame(b *testing.B) {
	for _, sz := range benchSizes {
		src := pattern("smooth", sz.w, sz.h)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 85}); err != nil {
			b.Fatal(err)
		}
		mjpeg := stripDHT(b, buf.Bytes())
		yuyv := encodeYUYV(src)
		nv12 := encodeNV12(src)
		for _, f := range []struct {
			name string
			fmt  PixelFormat
			data []byte
		}{{"MJPEG", FormatMJPEG, mjpeg}, {"YUYV", FormatYUYV, yuyv}, {"NV12", FormatNV12, nv12}} {
			b.Run(fmt.Sprintf("%s/%dx%d", f.name, sz.w, sz.h), func(b *testing.B) {
				b.SetBytes(int64(len(f.data)))
				for b.Loop() {
					img, err := Decode(f.fmt, f.data, sz.w, sz.h)
					if err != nil {
						b.Fatal(err)
					}
					if px := Normalize(img, 224, 224); len(px) != 3*224*224 {
						b.Fatal(len(px))
					}
				}
			})
		}
	}
}

// BenchmarkDecode and BenchmarkNormalize split the work of
// BenchmarkFrame.
func BenchmarkDecode(b *testing.B) {
	for _, sz := range benchSizes {
		src := pattern("smooth", sz.w, sz.h)
		var buf bytes.Buffer
		jpeg.Encode(&buf, src, &jpeg.Options{Quality: 85})
		mjpeg, yuyv := buf.Bytes(), encodeYUYV(src)
		b.Run(fmt.Sprintf("MJPEG/%dx%d", sz.w, sz.h), func(b *testing.B) {
			for b.Loop() {
				DecodeMJPEG(mjpeg)
			}
		})
		b.Run(fmt.Sprintf("YUYV/%dx%d", sz.w, sz.h), func(b *testing.B) {
			for b.Loop() {
				DecodeYUYV(yuyv, sz.w, sz.h)
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, sz := range benchSizes {
		src := pattern("smooth", sz.w, sz.h)
		var buf bytes.Buffer
		jpeg.Encode(&buf, src, &jpeg.Options{Quality: 85})
		ycc, _ := DecodeMJPEG(buf.Bytes())
		b.Run(fmt.Sprintf("RGBA/%dx%d", sz.w, sz.h), func(b *testing.B) {
			for b.Loop() {
				Normalize(src, 224, 224)
			}
		})
		b.Run(fmt.Sprintf("YCbCr/%dx%d", sz.w, sz.h), func(b *testing.B) {
			for b.Loop() {
				Normalize(ycc, 224, 224)
			}
		})
	}
}

// vitLike is a stand-in for the ViT with a real cost: normalise to
// 224x224, cut 14x14 patches and project each (588 values) to 64
// features, 256 x 588 x 64 multiply-adds per frame. The real ViT is
// measured by the daemon's benchmark; this one shows what the cache
// saves relative to the per-frame cost.
func vitLike(w []float32) Encoder {
	return func(ctx context.Context, f Frame) ([]float32, error) {
		px := Normalize(f.Image, 224, 224)
		out := make([]float32, 256*64)
		patch := make([]float32, 588)
		for py := 0; py < 16; py++ {
			for pxi := 0; pxi < 16; pxi++ {
				k := 0
				for c := 0; c < 3; c++ {
					for y := 0; y < 14; y++ {
						row := px[c*224*224+(py*14+y)*224+pxi*14:]
						copy(patch[k:k+14], row[:14])
						k += 14
					}
				}
				o := out[(py*16+pxi)*64 : (py*16+pxi+1)*64]
				for j := range o {
					wj := w[j*588 : (j+1)*588]
					var s float32
					for i, v := range patch {
						s += v * wj[i]
					}
					o[j] = s
				}
			}
		}
		return out, ctx.Err()
	}
}

// BenchmarkVideoTokens compares the visual side of a 16-frame video
// question with an empty token cache (every frame encoded when asked)
// and with frames encoded ahead as they arrived.
func BenchmarkVideoTokens(b *testing.B) {
	w := make([]float32, 64*588)
	for i := range w {
		w[i] = float32(i%7) * 0.01
	}
	enc := vitLike(w)
	ring := NewRing(1 << 30)
	for i := uint64(1); i <= 16; i++ {
		ring.Add(Frame{Image: pattern("smooth", 640, 480), Seq: i, Time: t0})
	}
	win, err := ring.Window(16, Stride{Frames: 1})
	if err != nil || len(win.Frames) != 16 {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			c := NewTokenCache(enc, TokenCacheOptions{})
			if _, err := c.Tokens(ctx, win.Frames); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := NewTokenCache(enc, TokenCacheOptions{})
		c.Tokens(ctx, win.Frames) // encoded ahead, as Run does while frames arrive
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.Tokens(ctx, win.Frames); err != nil {
				b.Fatal(err)
			}
		}
		if st := c.Stats(); st.Misses != 16 {
			b.Fatalf("misses %d", st.Misses)
		}
	})
}

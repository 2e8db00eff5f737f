package capture

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// pattern builds the procedural test images of testdata/pil_resize.py.
func pattern(kind string, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var px [3]uint8
			for c := 0; c < 3; c++ {
				var v int
				if kind == "noise" {
					u := uint32(x*73856093) ^ uint32(y*19349663) ^ uint32(c*83492791)
					v = int(u>>7) & 255
				} else {
					switch c {
					case 0:
						v = x * 255 / max(w-1, 1)
					case 1:
						v = y * 255 / max(h-1, 1)
					default:
						if (x/37+y/23)%2 == 0 {
							v = 255
						}
					}
				}
				px[c] = uint8(v)
			}
			img.SetRGBA(x, y, color.RGBA{px[0], px[1], px[2], 255})
		}
	}
	return img
}

// TestResizeMatchesPillow compares ResizeRGB byte for byte with Pillow's
// Image.resize(BILINEAR) output (testdata/pil_resize.py).
func TestResizeMatchesPillow(t *testing.T) {
	files, err := filepath.Glob("testdata/pil/*.rgb")
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference files: %v", err)
	}
	for _, f := range files {
		var kind string
		var w, h, ow, oh int
		if _, err := fmt.Sscanf(filepath.Base(f), "%5s_%dx%d_to_%dx%d.rgb", &kind, &w, &h, &ow, &oh); err != nil {
			// "smooth" has 6 letters.
			if _, err := fmt.Sscanf(filepath.Base(f), "%6s_%dx%d_to_%dx%d.rgb", &kind, &w, &h, &ow, &oh); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := ResizeRGB(pattern(kind, w, h), ow, oh)
			if len(got) != len(want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
			bad := 0
			for i := range got {
				if got[i] != want[i] {
					if bad < 5 {
						t.Errorf("byte %d (x=%d y=%d c=%d): got %d, Pillow %d", i, i/3%ow, i/3/ow, i%3, got[i], want[i])
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d bytes differ", bad, len(got))
			}
		})
	}
}

func TestNormalizeLayoutAndRange(t *testing.T) {
	// A 2x1 image: left pixel pure red, right pixel (0, 128, 255).
	img := image.NewRGBA(image.Rect(0, 0, 2, 1))
	img.SetRGBA(0, 0, color.RGBA{255, 0, 0, 255})
	img.SetRGBA(1, 0, color.RGBA{0, 128, 255, 255})
	got := Normalize(img, 2, 1)
	want := []float32{1, -1, -1, float32(128/127.5 - 1), -1, 1} // CHW
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("Normalize = %v, want %v", got, want)
		}
	}
	if Normalize(img, 0, 4) != nil || Normalize(image.NewRGBA(image.Rect(0, 0, 0, 0)), 4, 4) != nil {
		t.Error("empty input or output size should give nil")
	}
}

// TestNormalizeImageTypes checks that every fast path gives what the
// generic path (through color conversion) gives.
func TestNormalizeImageTypes(t *testing.T) {
	src := pattern("noise", 41, 29)
	ycc := image.NewYCbCr(image.Rect(0, 0, 41, 29), image.YCbCrSubsampleRatio420)
	for y := 0; y < 29; y++ {
		for x := 0; x < 41; x++ {
			c := src.RGBAAt(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			ycc.Y[ycc.YOffset(x, y)] = yy
			ycc.Cb[ycc.COffset(x, y)] = cb
			ycc.Cr[ycc.COffset(x, y)] = cr
		}
	}
	gray := image.NewGray(image.Rect(0, 0, 41, 29))
	nrgba := image.NewNRGBA(image.Rect(0, 0, 41, 29))
	for y := 0; y < 29; y++ {
		for x := 0; x < 41; x++ {
			c := src.RGBAAt(x, y)
			gray.SetGray(x, y, color.Gray{c.G})
			nrgba.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, 255})
		}
	}
	// A sub-image with an offset origin exercises the bounds handling.
	big := pattern("noise", 60, 50)
	sub := big.SubImage(image.Rect(7, 9, 48, 38)).(*image.RGBA)
	for _, tc := range []struct {
		name string
		img  image.Image
	}{{"ycbcr", ycc}, {"gray", gray}, {"nrgba", nrgba}, {"rgba-sub", sub}} {
		generic := Normalize(opaque{tc.img}, 17, 13)
		fast := Normalize(tc.img, 17, 13)
		for i := range fast {
			if fast[i] != generic[i] {
				t.Errorf("%s: value %d: fast %v, generic %v", tc.name, i, fast[i], generic[i])
				break
			}
		}
	}
}

// opaque hides the concrete type of an image so Normalize takes its
// generic path.
type opaque struct{ image.Image }

// TestNormalizeYCbCrRatios checks the YCbCr fast path for every chroma
// subsampling and an offset sub-image against the generic path.
func TestNormalizeYCbCrRatios(t *testing.T) {
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(image.Rect(0, 0, 45, 31), ratio)
		for i := range m.Y {
			m.Y[i] = uint8(i * 7)
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = uint8(i*13), uint8(255-i*5)
		}
		for _, img := range []image.Image{m, m.SubImage(image.Rect(5, 3, 40, 30))} {
			fast := ResizeRGB(img, 19, 11)
			generic := ResizeRGB(opaque{img}, 19, 11)
			if string(fast) != string(generic) {
				t.Errorf("ratio %v bounds %v: fast path differs", ratio, img.Bounds())
			}
		}
	}
}

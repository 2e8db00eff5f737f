package capture

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"
)

// refBT601 is the floating-point BT.601 limited-range conversion.
func refBT601(y, u, v uint8) [3]float64 {
	yy := (float64(y) - 16) * 255 / 219
	d := (float64(u) - 128) * 255 / 224
	e := (float64(v) - 128) * 255 / 224
	return [3]float64{yy + 1.402*e, yy - 0.344136*d - 0.714136*e, yy + 1.772*d}
}

// rgbToYUV601 is the forward BT.601 limited-range conversion, rounded.
func rgbToYUV601(r, g, b uint8) (y, u, v uint8) {
	R, G, B := float64(r), float64(g), float64(b)
	rd := func(x float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(x)))) }
	return rd(16 + (65.481*R+128.553*G+24.966*B)/255),
		rd(128 + (-37.797*R-74.203*G+112*B)/255),
		rd(128 + (112*R-93.786*G-18.214*B)/255)
}

func TestBT601AllValues(t *testing.T) {
	for y := 0; y < 256; y++ {
		for u := 0; u < 256; u++ {
			for v := 0; v < 256; v++ {
				r, g, b := bt601(uint8(y), uint8(u), uint8(v))
				ref := refBT601(uint8(y), uint8(u), uint8(v))
				for c, got := range []uint8{r, g, b} {
					want := math.Max(0, math.Min(255, math.Round(ref[c])))
					if math.Abs(float64(got)-want) > 1 || (math.Abs(ref[c]-math.Round(ref[c])) < 0.49 && float64(got) != want) {
						t.Fatalf("bt601(%d,%d,%d) channel %d = %d, want %v (%.3f)", y, u, v, c, got, want, ref[c])
					}
				}
			}
		}
	}
}

// TestColourBars checks the 100% colour bars of BT.601 (limited range).
func TestColourBars(t *testing.T) {
	bars := []struct {
		name    string
		y, u, v uint8
		rgb     [3]uint8
	}{
		{"white", 235, 128, 128, [3]uint8{255, 255, 255}},
		{"yellow", 210, 16, 146, [3]uint8{255, 255, 0}},
		{"cyan", 170, 166, 16, [3]uint8{0, 255, 255}},
		{"green", 145, 54, 34, [3]uint8{0, 255, 0}},
		{"magenta", 106, 202, 222, [3]uint8{255, 0, 255}},
		{"red", 81, 90, 240, [3]uint8{255, 0, 0}},
		{"blue", 41, 240, 110, [3]uint8{0, 0, 255}},
		{"black", 16, 128, 128, [3]uint8{0, 0, 0}},
		{"grey", 126, 128, 128, [3]uint8{128, 128, 128}},
	}
	// One YUYV frame and one NV12 frame, 2x2 pixels per bar, side by side.
	w, h := 2*len(bars), 2
	yuyv := make([]byte, 2*w*h)
	nv12 := make([]byte, w*h+w)
	for i, b := range bars {
		for row := 0; row < h; row++ {
			o := row*2*w + 4*i
			copy(yuyv[o:], []byte{b.y, b.u, b.y, b.v})
			nv12[row*w+2*i], nv12[row*w+2*i+1] = b.y, b.y
		}
		nv12[w*h+2*i], nv12[w*h+2*i+1] = b.u, b.v
	}
	for name, dec := range map[string]func() (*image.RGBA, error){
		"YUYV": func() (*image.RGBA, error) { return DecodeYUYV(yuyv, w, h) },
		"NV12": func() (*image.RGBA, error) { return DecodeNV12(nv12, w, h) },
	} {
		img, err := dec()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, b := range bars {
			for _, p := range []image.Point{{2 * i, 0}, {2*i + 1, 1}} {
				c := img.RGBAAt(p.X, p.Y)
				got := [3]uint8{c.R, c.G, c.B}
				for k := range got {
					if d := int(got[k]) - int(b.rgb[k]); d < -1 || d > 1 || c.A != 255 {
						t.Errorf("%s %s at %v: got %v, want %v", name, b.name, p, c, b.rgb)
						break
					}
				}
			}
		}
	}
}

// encodeYUYV and encodeNV12 make camera frames from an RGB image
// (chroma of a pixel pair / 2x2 block taken from its first pixel).
func encodeYUYV(img *image.RGBA) []byte {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := make([]byte, 0, 2*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x += 2 {
			c0, c1 := img.RGBAAt(x, y), img.RGBAAt(x+1, y)
			y0, u, v := rgbToYUV601(c0.R, c0.G, c0.B)
			y1, _, _ := rgbToYUV601(c1.R, c1.G, c1.B)
			out = append(out, y0, u, y1, v)
		}
	}
	return out
}

func encodeNV12(img *image.RGBA) []byte {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := make([]byte, w*h, w*h+2*((w+1)/2)*((h+1)/2))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := img.RGBAAt(x, y)
			out[y*w+x], _, _ = rgbToYUV601(c.R, c.G, c.B)
		}
	}
	for y := 0; y < h; y += 2 {
		for x := 0; x < w; x += 2 {
			c := img.RGBAAt(x, y)
			_, u, v := rgbToYUV601(c.R, c.G, c.B)
			out = append(out, u, v)
		}
	}
	return out
}

// flatImage has constant colour in 2x2 blocks, so chroma subsampling
// loses nothing and a round trip must come back within rounding.
func flatImage(w, h int) *image.RGBA {
	img := pattern("noise", w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, img.RGBAAt(x&^1, y&^1))
		}
	}
	return img
}

func TestYUVRoundTrip(t *testing.T) {
	src := flatImage(38, 22)
	for name, dec := range map[string]func() (*image.RGBA, error){
		"YUYV": func() (*image.RGBA, error) { return DecodeYUYV(encodeYUYV(src), 38, 22) },
		"NV12": func() (*image.RGBA, error) { return DecodeNV12(encodeNV12(src), 38, 22) },
	} {
		img, err := dec()
		if err != nil {
			t.Fatal(err)
		}
		for i := range src.Pix {
			// Limited range keeps ~7.8 bits: a round trip is within 2.
			if d := int(img.Pix[i]) - int(src.Pix[i]); d < -2 || d > 2 {
				t.Fatalf("%s: byte %d: got %d, want %d", name, i, img.Pix[i], src.Pix[i])
			}
		}
	}
}

func TestYUYVStride(t *testing.T) {
	src := flatImage(6, 3)
	packed := encodeYUYV(src)
	padded := make([]byte, 0, 16*3)
	for y := 0; y < 3; y++ {
		padded = append(padded, packed[y*12:(y+1)*12]...)
		padded = append(padded, 0xEE, 0xEE, 0xEE, 0xEE)
	}
	a, err := DecodeYUYV(packed, 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeYUYV(padded, 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("padded rows decode differently")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    PixelFormat
		data []byte
		w, h int
	}{
		{"yuyv short", FormatYUYV, make([]byte, 10), 4, 2},
		{"yuyv odd width", FormatYUYV, make([]byte, 100), 3, 2},
		{"yuyv zero", FormatYUYV, nil, 0, 0},
		{"nv12 short", FormatNV12, make([]byte, 11), 4, 2},
		{"nv12 huge", FormatNV12, make([]byte, 11), 1 << 20, 2},
		{"mjpeg empty", FormatMJPEG, nil, 0, 0},
		{"mjpeg garbage", FormatMJPEG, []byte("hello world"), 0, 0},
		{"mjpeg truncated", FormatMJPEG, testJPEG(t, 32, 24)[:100], 0, 0},
		{"unknown format", PixelFormat(0x34324742), make([]byte, 100), 4, 2},
	} {
		if _, err := Decode(tc.f, tc.data, tc.w, tc.h); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}

func testJPEG(t testing.TB, w, h int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, pattern("smooth", w, h), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stripDHT removes the DHT segments of a JPEG, as MJPEG cameras send it.
func stripDHT(t testing.TB, data []byte) []byte {
	out := []byte{0xFF, 0xD8}
	i := 2
	for {
		m := data[i+1]
		if m == 0xDA {
			return append(out, data[i:]...)
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if m != 0xC4 {
			out = append(out, data[i:i+2+n]...)
		}
		i += 2 + n
		if i+4 > len(data) {
			t.Fatal("no SOS")
		}
	}
}

func TestDecodeMJPEGWithoutHuffmanTables(t *testing.T) {
	full := testJPEG(t, 64, 48)
	bare := stripDHT(t, full)
	if bytes.Contains(bare, []byte{0xFF, 0xC4}) || len(bare) >= len(full) {
		t.Fatal("stripDHT did not strip")
	}
	if _, err := jpeg.Decode(bytes.NewReader(bare)); err == nil {
		t.Fatal("image/jpeg decodes a table-less frame: the test proves nothing")
	}
	a, err := DecodeMJPEG(full)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeMJPEG(bare)
	if err != nil {
		t.Fatal(err)
	}
	ya, yb := a.(*image.YCbCr), b.(*image.YCbCr)
	if !bytes.Equal(ya.Y, yb.Y) || !bytes.Equal(ya.Cb, yb.Cb) || !bytes.Equal(ya.Cr, yb.Cr) {
		t.Error("table-less frame decodes differently (Go's encoder uses the Annex K tables)")
	}
}

// TestMJPEGColour: a JPEG of flat colours decodes to those colours.
func TestMJPEGColour(t *testing.T) {
	cols := []color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {200, 150, 50, 255}}
	src := image.NewRGBA(image.Rect(0, 0, 64, 16))
	for x := 0; x < 64; x++ {
		for y := 0; y < 16; y++ {
			src.SetRGBA(x, y, cols[x/16])
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	img, err := DecodeMJPEG(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	rgb := ResizeRGB(img, 64, 16) // identity size: the YCbCr fast path
	for i, want := range cols {
		x, y := 16*i+8, 8
		p := rgb[3*(y*64+x):]
		for c, v := range []uint8{want.R, want.G, want.B} {
			if d := int(p[c]) - int(v); d < -3 || d > 3 {
				t.Errorf("colour %d: got %v, want %v", i, p[:3], want)
				break
			}
		}
	}
}

func TestPixelFormatString(t *testing.T) {
	if FormatMJPEG.String() != "MJPG" || FormatYUYV.String() != "YUYV" || FormatNV12.String() != "NV12" {
		t.Errorf("got %v %v %v", FormatMJPEG, FormatYUYV, FormatNV12)
	}
	if PixelFormat(1).String() != "0x00000001" {
		t.Error(PixelFormat(1).String())
	}
}

func FuzzDecodeMJPEG(f *testing.F) {
	full := testJPEG(f, 32, 24)
	f.Add(full)
	f.Add(stripDHT(f, full))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeMJPEG(data)
		if err != nil {
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || b.Dx() > MaxDimension || b.Dy() > MaxDimension {
			t.Fatalf("decoded bounds %v", b)
		}
		if b.Dx()*b.Dy() <= 1<<16 {
			if px := Normalize(img, 8, 8); len(px) != 3*64 {
				t.Fatalf("Normalize gave %d values", len(px))
			}
		}
	})
}

func FuzzDecodeYUYV(f *testing.F) {
	f.Add(encodeYUYV(flatImage(4, 2)), 4, 2)
	f.Add([]byte{1, 2, 3}, 2, 1)
	f.Fuzz(func(t *testing.T, data []byte, w, h int) {
		img, err := DecodeYUYV(data, w, h)
		if err != nil {
			return
		}
		if img.Rect.Dx() != w || img.Rect.Dy() != h || len(data) < 2*w*h {
			t.Fatalf("accepted %d bytes as %dx%d", len(data), w, h)
		}
	})
}

func FuzzDecodeNV12(f *testing.F) {
	f.Add(encodeNV12(flatImage(4, 2)), 4, 2)
	f.Add([]byte{1, 2, 3}, 3, 1)
	f.Fuzz(func(t *testing.T, data []byte, w, h int) {
		img, err := DecodeNV12(data, w, h)
		if err != nil {
			return
		}
		if img.Rect.Dx() != w || img.Rect.Dy() != h || len(data) < w*h {
			t.Fatalf("accepted %d bytes as %dx%d", len(data), w, h)
		}
	})
}

// TestNV12OddSize checks odd widths and heights (chroma rounded up).
func TestNV12OddSize(t *testing.T) {
	w, h := 5, 3
	src := flatImage(6, 4)
	full := encodeNV12(src) // 6x4: Y 24 bytes, UV 3x2 pairs
	// Re-pack as 5x3: Y rows cut to 5, chroma 3x2 pairs unchanged.
	var data []byte
	for y := 0; y < h; y++ {
		data = append(data, full[y*6:y*6+5]...)
	}
	data = append(data, full[24:24+12]...)
	img, err := DecodeNV12(data, w, h)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := DecodeNV12(full, 6, 4)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if img.RGBAAt(x, y) != ref.RGBAAt(x, y) {
				t.Fatalf("(%d,%d): %v, want %v", x, y, img.RGBAAt(x, y), ref.RGBAAt(x, y))
			}
		}
	}
}

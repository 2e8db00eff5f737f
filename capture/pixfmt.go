package capture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
)

// PixelFormat is a V4L2 fourcc pixel format code.
type PixelFormat uint32

// The pixel formats capture decodes (V4L2 fourcc codes; the webcam
// library exports none).
const (
	FormatMJPEG PixelFormat = 0x47504A4D // 'MJPG'
	FormatYUYV  PixelFormat = 0x56595559 // 'YUYV', 4:2:2 packed Y0 U Y1 V
	FormatNV12  PixelFormat = 0x3231564E // 'NV12', Y plane then interleaved UV at half resolution
)

// String returns the fourcc as text, such as "MJPG".
func (f PixelFormat) String() string {
	b := []byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%08X", uint32(f))
		}
	}
	return string(b)
}

// Decode turns one raw frame of the given format and size into an image:
// MJPEG gives an *image.YCbCr (or *image.Gray), YUYV and NV12 an
// *image.RGBA.
func Decode(f PixelFormat, data []byte, w, h int) (image.Image, error) {
	switch f {
	case FormatMJPEG:
		return DecodeMJPEG(data)
	case FormatYUYV:
		return DecodeYUYV(data, w, h)
	case FormatNV12:
		return DecodeNV12(data, w, h)
	}
	return nil, fmt.Errorf("capture: unsupported pixel format %v", f)
}

// BT.601 limited-range YCbCr to RGB in 16.16 fixed point:
//
//	R = 255/219 (Y-16) + 1.402   255/224 (Cr-128)
//	G = 255/219 (Y-16) - 0.344136 255/224 (Cb-128) - 0.714136 255/224 (Cr-128)
//	B = 255/219 (Y-16) + 1.772   255/224 (Cb-128)
const (
	kY  = 76309  // 255/219 * 65536
	kRV = 104597 // 1.402 * 255/224 * 65536
	kGU = 25675  // 0.344136 * 255/224 * 65536
	kGV = 53279  // 0.714136 * 255/224 * 65536
	kBU = 132201 // 1.772 * 255/224 * 65536
)

func clamp16(v int32) uint8 {
	v = (v + 1<<15) >> 16
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return uint8(v)
}

// bt601 converts one limited-range pixel.
func bt601(y, u, v uint8) (r, g, b uint8) {
	yy := (int32(y) - 16) * kY
	d := int32(u) - 128
	e := int32(v) - 128
	return clamp16(yy + kRV*e), clamp16(yy - kGU*d - kGV*e), clamp16(yy + kBU*d)
}

// DecodeYUYV converts a packed YUYV 4:2:2 frame (BT.601 limited range)
// of w x h pixels to RGBA. Rows may be padded: the stride is taken as
// len(data)/h when that is at least 2w.
func DecodeYUYV(data []byte, w, h int) (*image.RGBA, error) {
	if w <= 0 || h <= 0 || w%2 != 0 {
		return nil, fmt.Errorf("capture: YUYV frame size %dx%d invalid (width must be even and positive)", w, h)
	}
	if w > MaxDimension || h > MaxDimension {
		return nil, fmt.Errorf("capture: YUYV frame size %dx%d too large", w, h)
	}
	if len(data) < 2*w*h {
		return nil, fmt.Errorf("capture: YUYV frame is %d bytes, want %d for %dx%d", len(data), 2*w*h, w, h)
	}
	stride := 2 * w
	if s := len(data) / h; s > stride && len(data)%h == 0 {
		stride = s
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		src := data[y*stride : y*stride+2*w]
		dst := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for i := 0; i+3 < len(src); i += 4 {
			s := src[i : i+4 : i+4]
			d := int32(s[1]) - 128
			e := int32(s[3]) - 128
			rv, gv, bv := kRV*e, -kGU*d-kGV*e, kBU*d
			o := dst[2*i : 2*i+8 : 2*i+8]
			y0 := (int32(s[0]) - 16) * kY
			y1 := (int32(s[2]) - 16) * kY
			o[0], o[1], o[2], o[3] = clamp16(y0+rv), clamp16(y0+gv), clamp16(y0+bv), 255
			o[4], o[5], o[6], o[7] = clamp16(y1+rv), clamp16(y1+gv), clamp16(y1+bv), 255
		}
	}
	return img, nil
}

// DecodeNV12 converts an NV12 frame (a w x h luma plane followed by
// interleaved Cb Cr at half resolution in both directions, BT.601 limited
// range) to RGBA.
func DecodeNV12(data []byte, w, h int) (*image.RGBA, error) {
	if w <= 0 || h <= 0 || w > MaxDimension || h > MaxDimension {
		return nil, fmt.Errorf("capture: NV12 frame size %dx%d invalid", w, h)
	}
	cw, ch := (w+1)/2, (h+1)/2
	need := w*h + 2*cw*ch
	if len(data) < need {
		return nil, fmt.Errorf("capture: NV12 frame is %d bytes, want %d for %dx%d", len(data), need, w, h)
	}
	lum, uv := data[:w*h], data[w*h:need]
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		ly := lum[y*w : (y+1)*w]
		cy := uv[(y/2)*2*cw : (y/2+1)*2*cw]
		dst := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x+1 < w; x += 2 {
			c := cy[x : x+2 : x+2]
			d := int32(c[0]) - 128
			e := int32(c[1]) - 128
			rv, gv, bv := kRV*e, -kGU*d-kGV*e, kBU*d
			y0 := (int32(ly[x]) - 16) * kY
			y1 := (int32(ly[x+1]) - 16) * kY
			o := dst[4*x : 4*x+8 : 4*x+8]
			o[0], o[1], o[2], o[3] = clamp16(y0+rv), clamp16(y0+gv), clamp16(y0+bv), 255
			o[4], o[5], o[6], o[7] = clamp16(y1+rv), clamp16(y1+gv), clamp16(y1+bv), 255
		}
		if w%2 == 1 {
			x := w - 1
			r, g, b := bt601(ly[x], cy[x], cy[x+1])
			o := dst[4*x : 4*x+4 : 4*x+4]
			o[0], o[1], o[2], o[3] = r, g, b, 255
		}
	}
	return img, nil
}

// MaxDimension bounds the width and height of a decoded frame.
const MaxDimension = 8192

// ErrNotJPEG is returned (wrapped) by DecodeMJPEG for data that does not
// start with a JPEG SOI marker.
var ErrNotJPEG = errors.New("not a JPEG (no SOI marker)")

// DecodeMJPEG decodes one MJPEG frame. Many USB cameras leave out the
// Huffman tables (the AVI1 MJPEG convention); the standard tables of
// JPEG Annex K are inserted when the frame has none.
func DecodeMJPEG(data []byte) (image.Image, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, fmt.Errorf("capture: MJPEG frame: %w", ErrNotJPEG)
	}
	if pos, ok := needsDHT(data); ok {
		fixed := make([]byte, 0, len(data)+len(defaultDHT))
		fixed = append(fixed, data[:pos]...)
		fixed = append(fixed, defaultDHT...)
		fixed = append(fixed, data[pos:]...)
		data = fixed
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("capture: MJPEG frame: %v", err)
	}
	if cfg.Width > MaxDimension || cfg.Height > MaxDimension {
		return nil, fmt.Errorf("capture: MJPEG frame is %dx%d, larger than %d on a side", cfg.Width, cfg.Height, MaxDimension)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("capture: MJPEG frame: %v", err)
	}
	return img, nil
}

// needsDHT walks the marker segments before the first SOS and reports
// the position of that SOS when no DHT segment came before it.
func needsDHT(data []byte) (int, bool) {
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return 0, false // malformed; let the decoder report it
		}
		m := data[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0xC4: // DHT
			return 0, false
		case m == 0xDA: // SOS
			return i, true
		case m == 0x01 || (m >= 0xD0 && m <= 0xD8): // no length
			i += 2
			continue
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if n < 2 {
			return 0, false
		}
		i += 2 + n
	}
	return 0, false
}

// defaultDHT is a DHT segment holding the four standard Huffman tables
// of JPEG Annex K (K.3), as MJPEG streams without tables assume.
var defaultDHT = func() []byte {
	tables := []struct {
		class  byte // 0 DC, 1 AC
		id     byte
		counts [16]byte
		values []byte
	}{
		{0, 0, [16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{1, 0, [16]byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125}, []byte{
			0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
			0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
			0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
			0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
			0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
			0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
			0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
			0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
			0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
			0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa}},
		{0, 1, [16]byte{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{1, 1, [16]byte{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119}, []byte{
			0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
			0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
			0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
			0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
			0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
			0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
			0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
			0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
			0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
			0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa}},
	}
	var body []byte
	for _, t := range tables {
		body = append(body, t.class<<4|t.id)
		body = append(body, t.counts[:]...)
		body = append(body, t.values...)
	}
	n := len(body) + 2
	return append([]byte{0xFF, 0xC4, byte(n >> 8), byte(n)}, body...)
}()

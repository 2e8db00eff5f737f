package capture

import (
	"image"
	"image/color"
	"image/draw"
)

// precisionBits is the fixed-point precision of the resampling
// coefficients, as in Pillow's Resample.c for 8-bit images.
const precisionBits = 32 - 8 - 2

// Normalize squashes img to w x h (bilinear with antialias, aspect not
// kept, as PaLI does) and returns CHW float32 scaled to [-1, 1].
//
// The resampling is exactly Pillow's Image.resize(..., BILINEAR) on an
// RGB image: a triangle filter whose support is scaled by the shrink
// factor, separable (horizontal pass, then vertical), fixed-point
// coefficients and rounding to 8 bits after each pass. Each 8-bit value
// v then becomes v/127.5 - 1, as SigLIP's processor does with mean and
// std 0.5. Normalize returns nil when img is empty or w or h is not
// positive.
func Normalize(img image.Image, w, h int) []float32 {
	if img == nil || w <= 0 || h <= 0 {
		return nil
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil
	}
	rgb := ResizeRGB(img, w, h)
	return ToCHW(rgb, w, h)
}

// ToCHW turns packed 8-bit RGB (w*h*3 bytes, row-major) into planar CHW
// float32 values in [-1, 1] (v/127.5 - 1).
func ToCHW(rgb []byte, w, h int) []float32 {
	n := w * h
	out := make([]float32, 3*n)
	r, g, bl := out[:n], out[n:2*n], out[2*n:]
	var lut [256]float32
	for i := range lut {
		lut[i] = float32(i)/127.5 - 1
	}
	for i := 0; i < n; i++ {
		p := rgb[3*i : 3*i+3 : 3*i+3]
		r[i] = lut[p[0]]
		g[i] = lut[p[1]]
		bl[i] = lut[p[2]]
	}
	return out
}

// ResizeRGB squashes img to w x h with Pillow's BILINEAR resampling (see
// Normalize) and returns packed 8-bit RGB, w*h*3 bytes. Alpha is ignored.
func ResizeRGB(img image.Image, w, h int) []byte {
	b := img.Bounds()
	inW, inH := b.Dx(), b.Dy()
	hb, hk, hks := coeffs(inW, w)
	vb, vk, vks := coeffs(inH, h)

	// Only the source rows that the vertical pass reads need the
	// horizontal pass.
	first := vb[0]
	last := vb[2*(h-1)] + vb[2*(h-1)+1]
	rows := last - first

	tmp := make([]byte, rows*w*3)
	src := make([]byte, inW*3)
	rowFn := rowReader(img)
	for y := 0; y < rows; y++ {
		rowFn(src, first+y)
		horizontal(tmp[y*w*3:(y+1)*w*3], src, hb, hk, hks)
	}
	out := make([]byte, w*h*3)
	stride := w * 3
	acc := make([]int32, stride)
	for y := 0; y < h; y++ {
		ymin, ymax := vb[2*y]-first, vb[2*y+1]
		k := vk[y*vks : y*vks+ymax]
		for x := range acc {
			acc[x] = 1 << (precisionBits - 1)
		}
		for i, kv := range k {
			row := tmp[(ymin+i)*stride : (ymin+i+1)*stride]
			row = row[:len(acc)]
			for x, v := range row {
				acc[x] += int32(v) * kv
			}
		}
		dst := out[y*stride : (y+1)*stride]
		dst = dst[:len(acc)]
		for x, v := range acc {
			dst[x] = clip8(v)
		}
	}
	return out
}

// horizontal resamples one packed RGB row.
func horizontal(dst, src []byte, bounds []int, kk []int32, ksize int) {
	n := len(dst) / 3
	for x := 0; x < n; x++ {
		xmin, xmax := bounds[2*x], bounds[2*x+1]
		k := kk[x*ksize : x*ksize+xmax]
		s := src[xmin*3 : (xmin+xmax)*3]
		r := int32(1 << (precisionBits - 1))
		g, bl := r, r
		for len(k) > 0 && len(s) >= 3 {
			kv := k[0]
			r += int32(s[0]) * kv
			g += int32(s[1]) * kv
			bl += int32(s[2]) * kv
			k = k[1:]
			s = s[3:]
		}
		dst[3*x] = clip8(r)
		dst[3*x+1] = clip8(g)
		dst[3*x+2] = clip8(bl)
	}
}

func clip8(v int32) byte {
	if v >= 1<<precisionBits<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return byte(v >> precisionBits)
}

// coeffs computes Pillow's bilinear resampling coefficients from inSize
// to outSize (precompute_coeffs and normalize_coeffs_8bpc in Resample.c):
// for output pixel i, bounds[2i] is the first input pixel, bounds[2i+1]
// the number of taps, and kk[i*ksize:] the fixed-point weights.
func coeffs(inSize, outSize int) (bounds []int, kk []int32, ksize int) {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := 1.0 * filterscale // the triangle filter's support is 1
	ksize = int(ceil(support))*2 + 1
	bounds = make([]int, 2*outSize)
	kk = make([]int32, outSize*ksize)
	pre := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := int(center - support + 0.5) // truncation toward zero, as C's (int)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			t := (float64(x+xmin) - center + 0.5) * ss
			if t < 0 {
				t = -t
			}
			w := 0.0
			if t < 1 {
				w = 1 - t
			}
			pre[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			v := pre[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				kk[xx*ksize+x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				kk[xx*ksize+x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		bounds[2*xx] = xmin
		bounds[2*xx+1] = xmax
	}
	return bounds, kk, ksize
}

func ceil(x float64) float64 {
	i := float64(int64(x))
	if i < x {
		return i + 1
	}
	return i
}

// rowReader returns a function that writes source row y (relative to the
// image's bounds) of img as packed RGB into dst (len 3*width). The common
// concrete types take a fast path.
func rowReader(img image.Image) func(dst []byte, y int) {
	b := img.Bounds()
	w := b.Dx()
	switch m := img.(type) {
	case *image.RGBA:
		return func(dst []byte, y int) {
			off := m.PixOffset(b.Min.X, b.Min.Y+y)
			s := m.Pix[off : off+4*w]
			for x := 0; x < w; x++ {
				dst[3*x] = s[4*x]
				dst[3*x+1] = s[4*x+1]
				dst[3*x+2] = s[4*x+2]
			}
		}
	case *image.NRGBA:
		// Pillow's convert("RGB") drops alpha without premultiplying.
		return func(dst []byte, y int) {
			off := m.PixOffset(b.Min.X, b.Min.Y+y)
			s := m.Pix[off : off+4*w]
			for x := 0; x < w; x++ {
				dst[3*x] = s[4*x]
				dst[3*x+1] = s[4*x+1]
				dst[3*x+2] = s[4*x+2]
			}
		}
	case *image.Gray:
		return func(dst []byte, y int) {
			off := m.PixOffset(b.Min.X, b.Min.Y+y)
			for x, v := range m.Pix[off : off+w] {
				dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
			}
		}
	case *image.YCbCr:
		dx, dy := 1, 1 // chroma subsampling, as image.YCbCr.COffset
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio422:
			dx = 2
		case image.YCbCrSubsampleRatio420:
			dx, dy = 2, 2
		case image.YCbCrSubsampleRatio440:
			dy = 2
		case image.YCbCrSubsampleRatio411:
			dx = 4
		case image.YCbCrSubsampleRatio410:
			dx, dy = 4, 2
		}
		// The chroma index of each column, the same for every row.
		c0 := m.Rect.Min.X / dx
		cidx := make([]int32, w)
		for x := range cidx {
			cidx[x] = int32((b.Min.X+x)/dx - c0)
		}
		return func(dst []byte, y int) {
			yy := b.Min.Y + y
			yrow := m.Y[m.YOffset(b.Min.X, yy):]
			yrow = yrow[:w]
			coff := (yy/dy - m.Rect.Min.Y/dy) * m.CStride
			cb, cr := m.Cb[coff:], m.Cr[coff:]
			dst = dst[:3*w]
			for x, ci := range cidx {
				yy1 := int32(yrow[x]) * 0x10101
				cb1 := int32(cb[ci]) - 128
				cr1 := int32(cr[ci]) - 128
				d := dst[3*x : 3*x+3 : 3*x+3]
				d[0] = clampJFIF(yy1 + 91881*cr1)
				d[1] = clampJFIF(yy1 - 22554*cb1 - 46802*cr1)
				d[2] = clampJFIF(yy1 + 116130*cb1)
			}
		}
	default:
		// Generic path: let the image/draw package convert one row.
		row := image.NewRGBA(image.Rect(0, 0, w, 1))
		return func(dst []byte, y int) {
			draw.Draw(row, row.Rect, img, image.Pt(b.Min.X, b.Min.Y+y), draw.Src)
			for x := 0; x < w; x++ {
				c := row.Pix[4*x : 4*x+4]
				if c[3] != 0 && c[3] != 255 {
					// Undo premultiplication, as the colour was not
					// meant to be blended with black.
					n := color.NRGBAModel.Convert(color.RGBA{c[0], c[1], c[2], c[3]}).(color.NRGBA)
					dst[3*x], dst[3*x+1], dst[3*x+2] = n.R, n.G, n.B
					continue
				}
				dst[3*x], dst[3*x+1], dst[3*x+2] = c[0], c[1], c[2]
			}
		}
	}
}

// clampJFIF is image/color's rounding of a 16.16 value to 8 bits.
func clampJFIF(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// jfifToRGB converts full-range (JFIF, as JPEG stores it) YCbCr to RGB
// exactly as image/color.YCbCrToRGB does.
func jfifToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy1 := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy1 + 91881*cr1
	if uint32(r)&0xff000000 == 0 {
		r >>= 16
	} else {
		r = ^(r >> 31)
	}
	g := yy1 - 22554*cb1 - 46802*cr1
	if uint32(g)&0xff000000 == 0 {
		g >>= 16
	} else {
		g = ^(g >> 31)
	}
	b := yy1 + 116130*cb1
	if uint32(b)&0xff000000 == 0 {
		b >>= 16
	} else {
		b = ^(b >> 31)
	}
	return uint8(r), uint8(g), uint8(b)
}
